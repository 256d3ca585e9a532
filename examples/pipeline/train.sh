#!/bin/sh
# train TRAIN.csv: fits a nearest-centroid classifier — the mean point of each
# class — and writes model.txt, one line per class: "LABEL CX CY".
# The sleep stands in for the hours a real training run takes: it is what a
# reused train node does not spend.
set -eu
train=$1
echo "training on $(($(wc -l < "$train") - 1)) rows..."
sleep 3
awk -F, '
  NR == 1 { next }
  { n[$3]++; sx[$3] += $1; sy[$3] += $2 }
  END {
    for (c = 0; c <= 1; c++) {
      printf "%d %.4f %.4f\n", c, sx[c] / n[c], sy[c] / n[c] > "model.txt"
      printf "class %d: centroid (%.4f, %.4f) from %d rows\n", c, sx[c] / n[c], sy[c] / n[c], n[c]
    }
  }' "$train"
