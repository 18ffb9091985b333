#!/usr/bin/env python3
"""Office sheets as Vietnamese agencies write them, for kho's tests.

Each is a report rather than a bare table: the agency and the national motto above it, a
title and a date, a header on two rows (a merged heading over its sub-columns, "STT" merged
down), a row numbering the columns, a "Tổng cộng" row, and the place, date and signatures
below. One copy keeps its text in Unicode; two keep it in the legacy TCVN3 (ABC) and VNI
encodings, as files typed with the .VnTime and VNI-Times fonts still do.

Written with openpyxl, a spreadsheet writer offices' files are commonly made with; run
`python3 tests/sheets/make.py` to write them again (the files are kept in the repository).
"""
import datetime
import pathlib
import unicodedata

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font

HERE = pathlib.Path(__file__).resolve().parent

# Health facilities of Sơn La (made up), for the demo table `co-so-y-te/co-so`.
FACILITIES = [
    ("BV01", "Bệnh viện Đa khoa tỉnh Sơn La", "03646", 800, "0212 3852 345"),
    ("BV02", "Bệnh viện Y dược cổ truyền", "03664", 150, "0212.3856.789"),
    ("TTYT03", "Trung tâm Y tế Mộc Châu", "03979", "1.200", "0912345678"),
    ("TYT04", "Trạm y tế phường Chiềng Cơi", "03670", 5, "0987654321"),
    ("TYT05", "Trạm y tế phường Chiềng Sinh", "03679", 6, "0978123456"),
]

# TCVN3 (ABC): one code per lower-case letter; capitals were the same codes in a capital font.
TCVN3 = dict(zip(
    "ĂÂÊÔƠƯĐăâêôơưđàảãáạằẳẵắặầẩẫấậèẻẽéẹềểễếệìỉĩíịòỏõóọồổỗốộờởỡớợùủũúụừửữứựỳỷỹýỵ",
    [chr(c) for c in [0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE,
                      0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBB, 0xBC, 0xBD, 0xBE, 0xC6, 0xC7, 0xC8, 0xC9, 0xCA, 0xCB,
                      0xCC, 0xCE, 0xCF, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xDC, 0xDD, 0xDE,
                      0xDF, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6, 0xE7, 0xE8, 0xE9, 0xEA, 0xEB, 0xEC, 0xED, 0xEE,
                      0xEF, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xF6, 0xF7, 0xF8, 0xF9, 0xFA, 0xFB, 0xFC, 0xFD, 0xFE]]))


def tcvn3(text):
    out = []
    for ch in text:
        if ch in TCVN3:
            out.append(TCVN3[ch])
        elif ch.lower() in TCVN3 and ch.isupper():
            # An accented capital: the lower-case code, shown in capitals by the font.
            out.append(TCVN3[ch.lower()])
        else:
            out.append(ch)
    return "".join(out)


# VNI: a base letter followed by a mark; đ, ơ, ư and some i and y forms are single codes.
VNI_SINGLE = {"đ": "ñ", "ơ": "ô", "ư": "ö", "ị": "ò", "ĩ": "ó", "ỉ": "æ", "ỵ": "î", "ì": "ì", "í": "í"}
VNI_TONE = {"\u0300": "ø", "\u0301": "ù", "\u0309": "û", "\u0303": "õ", "\u0323": "ï"}
VNI_HAT = {"\u0300": "à", "\u0301": "á", "\u0309": "å", "\u0303": "ã", "\u0323": "ä", None: "â"}
VNI_BREVE = {"\u0300": "è", "\u0301": "é", "\u0309": "ú", "\u0303": "ü", "\u0323": "ë", None: "ê"}


def vni_letter(ch):
    lower = ch.lower()
    upper = ch != lower
    if lower in VNI_SINGLE:
        code = VNI_SINGLE[lower]
        return code.upper() if upper else code
    parts = unicodedata.normalize("NFD", lower)
    base, marks = parts[0], parts[1:]
    if base == "ư" or base == "ơ":
        base, marks = parts[0], parts[1:]
    tone = next((m for m in marks if m in VNI_TONE), None)
    shape = next((m for m in marks if m in ("\u0302", "\u0306", "\u031b")), None)
    if shape == "\u031b":
        # ơ and ư with a tone: the single code, then the tone.
        base = {"o": "ô", "u": "ö"}[base]
        mark = VNI_TONE[tone] if tone else ""
    elif shape == "\u0302":
        mark = VNI_HAT[tone]
    elif shape == "\u0306":
        mark = VNI_BREVE[tone]
    else:
        mark = VNI_TONE[tone] if tone else ""
    text = base + mark
    return text.upper() if upper else text


def vni(text):
    return "".join(vni_letter(ch) if ord(ch) > 127 else ch for ch in text)


# The same report a quarter later: the commune station of Chiềng Cơi has 8 beds now, and a new
# station has opened; the others are unchanged.
CORRECTED = [
    FACILITIES[0], FACILITIES[1], FACILITIES[2],
    ("TYT04", "Trạm y tế phường Chiềng Cơi", "03670", 8, "0987654321"),
    FACILITIES[4],
    ("TYT06", "Trạm y tế xã Chiềng Ngần", "03688", 4, "0212 3751 234"),
]

# Heads of household with their citizen ID (CCCD) and phone (made up; Sơn La's CCCD prefix is
# 014): personal data, which kho keeps out of open datasets.
HOUSEHOLDS = [
    ("Lò Văn Sáng", "014085001234", "0912345671", "03646"),
    ("Quàng Thị Mai", "014190002345", "0987654322", "03646"),
    ("Cầm Văn Thắng", "014078003456", "0978123453", "03664"),
    ("Lường Thị Hương", "014201004567", "0356789014", "03670"),
]


def households(path):
    wb = Workbook()
    ws = wb.active
    ws.title = "Chủ hộ"
    bold = Font(bold=True)
    ws["A1"] = "UBND XÃ CHIỀNG SINH"
    ws["A1"].font = bold
    ws["A3"] = "DANH SÁCH CHỦ HỘ NĂM 2026"
    ws["A3"].font = bold
    for col, text in zip("ABCDE", ["STT", "Họ và tên chủ hộ", "Số CCCD", "Số điện thoại", "Mã xã"]):
        ws[f"{col}5"] = text
        ws[f"{col}5"].font = bold
    for n, (name, cccd, phone, commune) in enumerate(HOUSEHOLDS, start=1):
        for col, value in zip("ABCDE", [n, name, cccd, phone, commune]):
            ws[f"{col}{5 + n}"] = value
            ws[f"{col}{5 + n}"].number_format = "@" if col in "CDE" else "General"
    for col, width in zip("ABCDE", [6, 26, 16, 14, 8]):
        ws.column_dimensions[col].width = width
    wb.save(path)


def sheet(path, encode=lambda s: s, dates=False, facilities=FACILITIES):
    wb = Workbook()
    ws = wb.active
    ws.title = encode("Báo cáo")
    bold = Font(bold=True)
    center = Alignment(horizontal="center", vertical="center", wrap_text=True)

    def put(cell, value, **style):
        ws[cell] = encode(value) if isinstance(value, str) else value
        for k, v in style.items():
            setattr(ws[cell], k, v)

    def heading(cell, text, merged_to=None, strong=True):
        """A centred heading, merged over a range that starts at `cell` when one is given."""
        put(cell, text, alignment=center, **({"font": bold} if strong else {}))
        if merged_to:
            ws.merge_cells(f"{cell}:{merged_to}")

    heading("A1", "UBND TỈNH SƠN LA", "C1")
    heading("A2", "SỞ Y TẾ", "C2")
    heading("E1", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "G1")
    heading("E2", "Độc lập - Tự do - Hạnh phúc", "G2")
    heading("A4", "BÁO CÁO DANH SÁCH CƠ SỞ KHÁM BỆNH, CHỮA BỆNH", "G4")
    heading("A5", "(Số liệu đến ngày 30/9/2026)", "G5", strong=False)

    # The header: STT and the commune merged down; a heading over the facility's code and name.
    heading("A7", "STT", "A8")
    heading("B7", "Thông tin cơ sở", "C7")
    heading("B8", "Mã cơ sở")
    heading("C8", "Tên cơ sở")
    heading("D7", "Mã xã", "D8")
    heading("E7", "Số giường bệnh", "E8")
    heading("F7", "Điện thoại", "F8")
    last = "F"
    if dates:
        heading("G7", "Ngày hoạt động", "G8")
        last = "G"
    for i, col in enumerate("ABCDEFG"[: "ABCDEFG".index(last) + 1]):
        put(f"{col}9", f"({i + 1})", alignment=center)

    row = 10
    # A date cell, a date typed as text, a date cell, a serial day left as a number, a date cell.
    started = [datetime.date(1965, 5, 19), "02/01/1998", datetime.date(2005, 3, 15), 40179, datetime.date(2016, 10, 8),
               datetime.date(2026, 8, 1)]
    for n, (code, name, commune, beds, phone) in enumerate(facilities, start=1):
        put(f"A{row}", n)
        put(f"B{row}", code)
        put(f"C{row}", name)
        put(f"D{row}", commune)
        ws[f"D{row}"].number_format = "@"
        put(f"E{row}", beds)
        put(f"F{row}", phone)
        if dates:
            put(f"G{row}", started[n - 1])
            if isinstance(started[n - 1], datetime.date):
                ws[f"G{row}"].number_format = "dd/mm/yyyy"
        row += 1
    put(f"A{row}", "Tổng cộng", font=bold)
    ws.merge_cells(f"A{row}:D{row}")
    ws[f"E{row}"] = f"=SUM(E10:E{row - 1})"
    row += 2
    put(f"E{row}", "Sơn La, ngày 30 tháng 9 năm 2026", alignment=center)
    row += 1
    put(f"B{row}", "NGƯỜI LẬP BIỂU", font=bold, alignment=center)
    put(f"E{row}", "GIÁM ĐỐC", font=bold, alignment=center)
    row += 1
    put(f"B{row}", "(Ký, ghi rõ họ tên)", alignment=center)
    put(f"E{row}", "(Ký tên, đóng dấu)", alignment=center)
    row += 4
    put(f"B{row}", "Nguyễn Thị Hoa", alignment=center)
    put(f"E{row}", "Lò Văn Minh", alignment=center)
    for col, width in zip("ABCDEFG", [6, 12, 34, 10, 14, 16, 16]):
        ws.column_dimensions[col].width = width
    wb.save(path)


if __name__ == "__main__":
    sheet(HERE / "co-so-y-te.xlsx")
    sheet(HERE / "co-so-y-te-ngay.xlsx", dates=True)
    sheet(HERE / "co-so-y-te-ngay-quy-4.xlsx", dates=True, facilities=CORRECTED)
    households(HERE / "chu-ho.xlsx")
    sheet(HERE / "co-so-y-te-tcvn3.xlsx", encode=tcvn3)
    sheet(HERE / "co-so-y-te-vni.xlsx", encode=vni)
    print("written:", ", ".join(p.name for p in sorted(HERE.glob("*.xlsx"))))
