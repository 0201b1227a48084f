# Summary of bench/readers.sh results.jsonl (jq -r -s -f bench/readers.jq).
# Per run: CPU s per reader-minute and KiB per reader at N (the stream's
# own muxer or transcoder start included); per rep the slope between the
# smallest and largest N (what one more reader costs).
def r(x): (x * 1000 | round) / 1000;
def perMin(f): (.window[f] - .idle[f] / .idle.seconds * .window.seconds) / .window.seconds * 60; # CPU s per minute above idle
"| case | N | rep | ok/N | Mbit/s each | CPU s per reader-min, server alone | with children | KiB per reader, alone | with children | children | load 1/5/15 |",
"|---|---|---|---|---|---|---|---|---|---|---|",
(sort_by(.case, .readers, .rep)[] |
  "| \(.case) | \(.readers) | \(.rep) | \(.ok)/\(.readers) | \(.mbit_per_s_per_reader) | \(.cpu_self_s_per_reader_minute) | \(.cpu_tree_s_per_reader_minute) | \(.rss_self_kib_per_reader) | \(.rss_tree_kib_per_reader) | \(.window.children) | \(.loadavg) |"),
"",
"| case | rep | N | slope: CPU s per extra reader-min, alone | with children | KiB per extra reader, alone | with children |",
"|---|---|---|---|---|---|---|",
(group_by(.case)[] | group_by(.rep)[] | sort_by(.readers) | select(length > 1) | .[0] as $a | .[-1] as $b | ($b.readers - $a.readers) as $d |
  "| \($b.case) | \($b.rep) | \($a.readers)->\($b.readers) | \(r((($b | perMin("cpu_self_seconds")) - ($a | perMin("cpu_self_seconds"))) / $d)) | \(r((($b | perMin("cpu_tree_seconds")) - ($a | perMin("cpu_tree_seconds"))) / $d)) | \(r(($b.window.rss_self_max_kib - $a.window.rss_self_max_kib) / $d)) | \(r(($b.window.rss_tree_max_kib - $a.window.rss_tree_max_kib) / $d)) |")
