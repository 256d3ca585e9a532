#!/bin/sh
# Counts the primes below $1 by trial division: slow on purpose, so that not
# running it a second time is worth something. Writes primes.txt.
limit=${1:-200000}
awk -v n="$limit" 'BEGIN {
  c = 0
  for (i = 2; i < n; i++) {
    p = 1
    for (j = 2; j * j <= i; j++) if (i % j == 0) { p = 0; break }
    if (p) { c++; print i > "primes.txt" }
  }
  print c " primes below " n
}'
