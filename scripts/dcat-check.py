#!/usr/bin/env python3
"""Harvest a running kho with the demo data as DCAT-AP 3 and check it with the official SHACL
shapes (pyshacl, rdflib from PyPI; shapes in data/reference/dcat-ap-3).

    scripts/dcat-check.py http://127.0.0.1:8080

Fails on any SHACL violation (warnings, for recommended properties kho cannot fill, such as an
EU corporate-body URI for a Vietnamese agency, are counted and printed), on formats that do not
say the same thing, and on any restricted dataset a harvester can see.
"""
import collections
import json
import os
import sys
import urllib.error
import urllib.request

import pyshacl
import rdflib
from rdflib.compare import isomorphic

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = os.path.join(HERE, "..", "data", "reference", "dcat-ap-3")
DCAT = rdflib.Namespace("http://www.w3.org/ns/dcat#")
DCT = rdflib.Namespace("http://purl.org/dc/terms/")
HYDRA = rdflib.Namespace("http://www.w3.org/ns/hydra/core#")
SH = rdflib.Namespace("http://www.w3.org/ns/shacl#")
FORMATS = {"ttl": "turtle", "jsonld": "json-ld", "rdf": "xml"}
MEDIA = {"ttl": "text/turtle", "jsonld": "application/ld+json", "rdf": "application/rdf+xml"}


def check(cond, what):
    if not cond:
        sys.exit(f"DCAT check failed: {what}")
    print(f"ok  {what}")


def get(url, accept=None):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def graph(url, ext):
    status, ctype, body = get(url)
    check(status == 200 and ctype.startswith(MEDIA[ext]), f"GET {url}: {status} {ctype}")
    return rdflib.Graph().parse(data=body, format=FORMATS[ext])


SHAPES_GRAPH = rdflib.Graph()
for name in ["shapes.ttl", "range.ttl", "mdr-vocabularies.shape.ttl", "shapes_recommended.ttl"]:
    SHAPES_GRAPH.parse(os.path.join(SHAPES, name))


def validate(g, what):
    _, report, _ = pyshacl.validate(g, shacl_graph=SHAPES_GRAPH, advanced=True)
    by_severity = collections.Counter()
    violations = []
    for result in report.objects(None, SH.result):
        severity = str(report.value(result, SH.resultSeverity)).rsplit("#", 1)[-1]
        by_severity[severity] += 1
        if severity == "Violation":
            violations.append(
                f"{report.value(result, SH.focusNode)} {report.value(result, SH.resultPath)}: "
                f"{report.value(result, SH.resultMessage)}"
            )
    check(not violations, f"{what}: no SHACL violations ({len(g)} triples; warnings: {by_severity['Warning']})"
          + ("" if not violations else "\n  " + "\n  ".join(violations[:20])))


def without_paging(g):
    """The graph without its Hydra page, whose links name the format's own address."""
    out = rdflib.Graph()
    pages = set(g.subjects(rdflib.RDF.type, HYDRA.PagedCollection))
    for t in g:
        if t[0] not in pages:
            out.add(t)
    return out


def main(base):
    with urllib.request.urlopen(f"{base}/api/3/action/package_search?rows=1000") as r:
        open_ids = {p["id"] for p in json.load(r)["result"]["results"]}
    check(len(open_ids) >= 6, f"{len(open_ids)} open datasets in package_search")

    catalogs = {ext: graph(f"{base}/catalog.{ext}", ext) for ext in FORMATS}
    for ext in ["jsonld", "rdf"]:
        check(isomorphic(without_paging(catalogs["ttl"]), without_paging(catalogs[ext])),
              f"catalog.{ext} says exactly what catalog.ttl says (but for its own paging links)")
    cat = catalogs["ttl"]
    validate(cat, "catalog.ttl")
    listed = {str(d).rsplit("/", 1)[-1] for d in cat.objects(None, DCAT.dataset)}
    check(listed == open_ids, f"the catalog lists exactly the {len(open_ids)} open datasets")
    check(not any("ho-kinh-doanh" in str(t) for t in cat.all_nodes()), "the restricted dataset is nowhere in it")
    pages = list(cat.subjects(rdflib.RDF.type, HYDRA.PagedCollection))
    check(len(pages) == 1 and int(cat.value(pages[0], HYDRA.totalItems)) == len(open_ids), "Hydra paging: totalItems")

    status, ctype, _ = get(f"{base}/catalog", accept="application/ld+json")
    check(status == 200 and ctype.startswith("application/ld+json"), "/catalog with Accept: application/ld+json")
    future = graph(f"{base}/catalog.ttl?modified_since=2999-01-01", "ttl")
    check(not list(future.objects(None, DCAT.dataset)), "modified_since in the future: no datasets")
    found = graph(f"{base}/catalog.ttl?q=dan+so", "ttl")
    titles = [str(t) for d in found.objects(None, DCAT.dataset) for t in found.objects(d, DCT.title)]
    check(any("Dân số" in t for t in titles), f"catalog q=dan so: {titles}")
    status, _, body = get(f"{base}/catalog.ttl?modified_since=last-week")
    check(status == 422 and b"modified_since" in body, f"a bad modified_since is a 422 naming it: {body[:120]!r}")
    status, _, body = get(f"{base}/catalog.ttl?page=0")
    check(status == 422 and b"page" in body, "page=0 is a 422 naming it")

    # Each open dataset on its own, in each format.
    for dataset_id in sorted(open_ids):
        graphs = {ext: graph(f"{base}/dataset/{dataset_id}.{ext}", ext) for ext in FORMATS}
        check(isomorphic(graphs["ttl"], graphs["jsonld"]) and isomorphic(graphs["ttl"], graphs["rdf"]),
              f"dataset {dataset_id}: the three formats agree")
        validate(graphs["ttl"], f"dataset/{dataset_id}.ttl")

    # A distribution's download works, and the Parquet file is as big as said.
    for dist in cat.subjects(rdflib.RDF.type, DCAT.Distribution):
        size = cat.value(dist, DCAT.byteSize)
        if size is None:
            continue
        url = str(cat.value(dist, DCAT.downloadURL))
        status, _, body = get(url)
        check(status == 200 and len(body) == int(size), f"{url}: {len(body)} bytes = byteSize {size}")
        break

    # A restricted dataset looks exactly like one that does not exist.
    hidden = get(f"{base}/dataset/ho-kinh-doanh-ca-the.ttl")
    missing = get(f"{base}/dataset/khong-co-bo-nay.ttl")
    check(hidden[0] == 404 and hidden[2] == missing[2], "the restricted dataset's DCAT is a plain 404")


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/"))
