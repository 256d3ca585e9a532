#!/bin/sh
# evaluate TEST.csv MODEL.txt THRESHOLD: scores each test point with the
# model — p = d0 / (d0 + d1), where dC is its distance to the centroid of
# class C — predicts class 1 when p >= THRESHOLD, and writes metrics.json
# (accuracy, precision and recall of class 1, the confusion counts).
set -eu
test_csv=$1
model=$2
threshold=$3
awk -v threshold="$threshold" '
  NR == FNR { cx[$1] = $2; cy[$1] = $3; next }   # model.txt
  FNR == 1 { next }                              # header of test.csv
  {
    split($0, f, ",")
    d0 = sqrt((f[1] - cx[0]) ^ 2 + (f[2] - cy[0]) ^ 2)
    d1 = sqrt((f[1] - cx[1]) ^ 2 + (f[2] - cy[1]) ^ 2)
    p = (d0 + d1 > 0) ? d0 / (d0 + d1) : 0.5
    predicted = (p >= threshold) ? 1 : 0
    if (predicted == 1 && f[3] == 1) tp++
    else if (predicted == 1) fp++
    else if (f[3] == 1) fn++
    else tn++
  }
  END {
    n = tp + fp + tn + fn
    accuracy = n > 0 ? (tp + tn) / n : 0
    precision = tp + fp > 0 ? tp / (tp + fp) : 0
    recall = tp + fn > 0 ? tp / (tp + fn) : 0
    printf "{\"threshold\": %s, \"accuracy\": %.4f, \"precision\": %.4f, \"recall\": %.4f, ", \
        threshold, accuracy, precision, recall > "metrics.json"
    printf "\"tp\": %d, \"fp\": %d, \"tn\": %d, \"fn\": %d}\n", tp, fp, tn, fn > "metrics.json"
    printf "threshold %s: accuracy %.3f, precision %.3f, recall %.3f on %d points\n", \
        threshold, accuracy, precision, recall, n
  }' "$model" "$test_csv"
