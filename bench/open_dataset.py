"""The benchmark register (bench/dataset.json) as open data: without its personal columns
(citizen ID, name), as a register published as open data must be (Law 91/2025/QH15). Pairs with
`gen_csv.py --open`.

    python3 bench/open_dataset.py OUT.json
"""
import json
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
d = json.load(open(os.path.join(here, "dataset.json"), encoding="utf-8"))
d["access_level"] = "open"
d["resources"][0]["schema"]["fields"] = [f for f in d["resources"][0]["schema"]["fields"] if f["name"] not in ("cccd", "ho_ten")]
json.dump(d, open(sys.argv[1], "w", encoding="utf-8"), ensure_ascii=False)
