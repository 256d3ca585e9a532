#!/bin/sh
# preprocess DATA.csv: splits the points (id,x,y,label) into train.csv (4 of
# every 5 rows) and test.csv (every 5th row, by id, so the split is the same
# on every run), and standardizes x and y with the mean and standard
# deviation of the training rows. Writes train.csv and test.csv (x,y,label).
set -eu
data=$1
awk -F, '
  FNR == 1 { next }                       # header, in both passes
  NR == FNR {                             # first pass: statistics of the train rows
    if ($1 % 5 != 0) { n++; sx += $2; sy += $3; sxx += $2 * $2; syy += $3 * $3 }
    next
  }
  FNR == 2 {                              # second pass starts: finish the statistics
    mx = sx / n; my = sy / n
    dx = sqrt(sxx / n - mx * mx); dy = sqrt(syy / n - my * my)
    print "x,y,label" > "train.csv"; print "x,y,label" > "test.csv"
  }
  {
    out = ($1 % 5 == 0) ? "test.csv" : "train.csv"
    printf "%.4f,%.4f,%d\n", ($2 - mx) / dx, ($3 - my) / dy, $4 > out
    rows[out]++
  }
  END {
    printf "standardized with mean (%.3f, %.3f), sd (%.3f, %.3f)\n", mx, my, dx, dy
    printf "train.csv: %d rows, test.csv: %d rows\n", rows["train.csv"], rows["test.csv"]
  }' "$data" "$data"
