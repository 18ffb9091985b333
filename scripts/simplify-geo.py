#!/usr/bin/env python3
"""Make the small boundary files kho's maps draw (data/geo/) from the MIT-licensed GeoJSON of
ThangLeQuoc/vietnamese-provinces-database (see data/geo/SOURCES.md).

    scripts/simplify-geo.py PROVINCES.geojson WARDS.geojson

Needs `pip install shapely`. Each polygon is simplified on its own (topology kept) and the
coordinates rounded, so a whole province's communes load in a browser in a blink.
"""
import json
import sys

from shapely.geometry import mapping, shape


def simplify(path, tolerance, digits, keep):
    with open(path, encoding="utf-8") as f:
        collection = json.load(f)
    features = []
    for feat in collection["features"]:
        geom = shape(feat["geometry"]).simplify(tolerance, preserve_topology=True)
        if geom.is_empty:
            continue

        def rounded(coords):
            if isinstance(coords[0], (int, float)):
                return [round(coords[0], digits), round(coords[1], digits)]
            return [rounded(c) for c in coords]

        g = mapping(geom)
        props = {k: feat["properties"].get(k) for k in keep}
        # Xã Ba Chẽ: 06978 in this source, 06970 in the GSO list, as kho loads it.
        if props.get("code") == "06978":
            props["code"] = "06970"
        features.append({
            "type": "Feature",
            "properties": props,
            "geometry": {"type": g["type"], "coordinates": rounded(json.loads(json.dumps(g["coordinates"])))},
        })
    return {"type": "FeatureCollection", "features": features}


def write(obj, path):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))


provinces, wards = sys.argv[1], sys.argv[2]
write(simplify(provinces, 0.01, 3, ["code", "name", "fullName"]), "data/geo/provinces.json")
write(simplify(wards, 0.002, 4, ["code", "name", "fullName", "provinceCode"]), "data/geo/communes.json")
