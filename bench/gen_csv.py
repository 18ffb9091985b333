"""Generate a deterministic test CSV for the ingest benchmark: 12 columns of the kinds a
province loads (ids, commune codes with leading zeros, citizen IDs, names, dates in Vietnamese
form, amounts, rates, statuses, free text).

    python3 bench/gen_csv.py ROWS [--open] > file.csv

`--open` leaves out the personal columns (citizen ID, name), as a register published as open
data must (Law 91/2025/QH15); the rows are otherwise the same.
"""
import csv
import os
import random
import sys

here = os.path.dirname(os.path.abspath(__file__))
args = [a for a in sys.argv[1:] if a != "--open"]
rows = int(args[0]) if args else 1_000_000
open_data = "--open" in sys.argv[1:]
PERSONAL = (2, 3)  # cccd, ho_ten
rnd = random.Random(20251123)

with open(os.path.join(here, "..", "data", "reference", "admin-units", "post-2025", "wards.csv"), encoding="utf-8") as f:
    communes = [r["code"] for r in csv.DictReader(f) if r["province_code"] == "14"]
family = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Vũ", "Lò", "Cầm", "Quàng", "Lường"]
middle = ["Văn", "Thị", "Đức", "Minh", "Thu", "Ngọc"]
given = ["An", "Bình", "Cường", "Dung", "Hà", "Hùng", "Lan", "Mai", "Nam", "Thảo", "Xuân", "Yến"]
status = ["Đang hoạt động", "Tạm dừng", "Đã đóng"]

out = csv.writer(sys.stdout, lineterminator="\n")


class Writer:
    def writerow(self, row):
        out.writerow([v for i, v in enumerate(row) if not (open_data and i in PERSONAL)])


w = Writer()
w.writerow(["id", "ma_xa", "cccd", "ho_ten", "ngay_sinh", "so_tien", "so_luong", "ty_le", "trang_thai", "ngay_cap_nhat", "ma_tinh", "ghi_chu"])
for i in range(1, rows + 1):
    year = rnd.randint(1940, 2015)
    female = rnd.random() < 0.5
    g = (0 if year < 2000 else 2) + (1 if female else 0)
    cccd = f"014{g}{year % 100:02d}{rnd.randint(0, 999999):06d}"
    w.writerow([
        i,
        rnd.choice(communes),
        cccd,
        f"{rnd.choice(family)} {rnd.choice(middle)} {rnd.choice(given)}",
        f"{rnd.randint(1, 28):02d}/{rnd.randint(1, 12):02d}/{year}",
        f"{rnd.randint(0, 10_000_000)}.{rnd.randint(0, 99):02d}",
        rnd.randint(0, 5000),
        f"{rnd.random():.4f}",
        rnd.choice(status),
        f"2025-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
        "14",
        "ghi chú số " + str(rnd.randint(0, 1000)),
    ])
