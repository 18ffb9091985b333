#!/usr/bin/env python3
"""Write N made-up but realistic dataset descriptions (a JSON array for `kho dataset create`):
Vietnamese titles, descriptions, tags and field names across sectors, owned by the given agencies.

    bench/gen_catalog.py N AGENCY_CODE [AGENCY_CODE…] > catalog.json
"""
import json
import random
import sys

random.seed(42)
n, agencies = int(sys.argv[1]), sys.argv[2:]
SUBJECTS = [
    ("Dân số", "dan-so", ["dân số", "hộ gia đình", "nhân khẩu"]),
    ("Trường học", "giao-duc", ["giáo dục", "trường học", "học sinh"]),
    ("Cơ sở y tế", "y-te", ["y tế", "bệnh viện", "trạm y tế"]),
    ("Doanh nghiệp", "kinh-te", ["doanh nghiệp", "đăng ký kinh doanh"]),
    ("Dự toán ngân sách", "tai-chinh", ["ngân sách", "thu chi"]),
    ("Chất lượng không khí", "moi-truong", ["môi trường", "không khí", "PM2.5"]),
    ("Diện tích đất nông nghiệp", "nong-nghiep", ["nông nghiệp", "đất đai"]),
    ("Tuyến xe buýt", "giao-thong", ["giao thông", "xe buýt"]),
    ("Cơ sở lưu trú du lịch", "du-lich", ["du lịch", "khách sạn"]),
    ("Hồ sơ thủ tục hành chính", "hanh-chinh", ["thủ tục hành chính", "dịch vụ công"]),
    ("Di tích lịch sử", "van-hoa", ["văn hóa", "di tích"]),
    ("Lao động việc làm", "lao-dong", ["lao động", "việc làm"]),
]
PLACES = ["Sơn La", "Mộc Châu", "Mai Sơn", "Yên Châu", "Thuận Châu", "Sông Mã", "Phù Yên", "Bắc Yên", "Quỳnh Nhai", "Hà Nội"]
KINDS = ["theo xã", "theo tháng", "theo năm", "theo quý", "tổng hợp", "chi tiết"]
FIELDS = ["ma_xa", "ten_xa", "so_luong", "gia_tri", "nam", "thang", "ghi_chu", "dia_chi", "so_dien_thoai", "loai_hinh"]
FREQ = ["monthly", "quarterly", "annual", "irregular", "semiannual"]
out = []
for i in range(n):
    subject, sector, tags = random.choice(SUBJECTS)
    place = random.choice(PLACES)
    title = f"{subject} {random.choice(KINDS)} tại {place} ({i})"
    fields = random.sample(FIELDS, 4)
    out.append({
        "slug": f"bo-du-lieu-{i:05d}",
        "title": title,
        "description": f"{subject} của {place}, cập nhật {random.choice(KINDS)}. Số liệu do cơ quan chủ quản tổng hợp.",
        "access_level": "open" if i % 5 else "restricted",
        "license": "CC-BY-4.0",
        "frequency": random.choice(FREQ),
        "sector": sector,
        "tags": tags[: random.randint(1, len(tags))],
        "spatial": "14",
        "owner_agency_code": random.choice(agencies),
        "resources": [{"name": "bang", "schema": {"fields": [{"name": f, "type": "string"} for f in fields]}}],
    })
json.dump(out, sys.stdout, ensure_ascii=False)
