#!/usr/bin/env python3
"""Read a running kho with the demo data through the `ckanapi` client (pip install ckanapi), as a
CKAN client or harvester would, and check that every answer is right.

    scripts/ckanapi-check.py http://127.0.0.1:8080

Exits non-zero, saying what differed, on the first wrong answer.
"""
import json
import sys
import urllib.request

import ckanapi


def check(cond, what):
    if not cond:
        sys.exit(f"ckanapi check failed: {what}")
    print(f"ok  {what}")


def main(base):
    ck = ckanapi.RemoteCKAN(base, user_agent="kho-ckanapi-check/1")
    anon_get = ckanapi.RemoteCKAN(base, user_agent="kho-ckanapi-check/1", get_only=True)

    status = ck.action.status_show()
    check(status["locale_default"] == "vi" and status["ckan_version"].startswith("2."), "status_show")

    names = ck.action.package_list()
    check(len(names) >= 6 and names == sorted(names), f"package_list: {len(names)} open datasets, sorted")
    # Every name listed is open: its package says so, and the kho API agrees.
    for name in names:
        with urllib.request.urlopen(f"{base}/api/v1/datasets/{name}") as r:
            check(json.load(r)["access_level"] == "open", f"{name} is open")

    # Search without diacritics finds the population dataset; facets count what was found.
    found = ck.call_action("package_search", {"q": "dan so", "facet.field": ["organization", "tags", "res_format"], "rows": 5})
    titles = [p["title"] for p in found["results"]]
    check(found["count"] >= 1 and any("Dân số" in t for t in titles), f"package_search q='dan so': {titles}")
    org_items = found["search_facets"]["organization"]["items"]
    check(sum(i["count"] for i in org_items) == found["count"], "organization facet counts add up to the count")
    for q in ["Dân số", "DAN SO", "dân  số"]:
        again = ck.call_action("package_search", {"q": q, "rows": 5})
        check([p["name"] for p in again["results"]] == [p["name"] for p in found["results"]], f"q={q!r} finds the same")

    # fq by organization and tag.
    org = org_items[0]["name"]
    narrowed = ck.call_action("package_search", {"q": "dan so", "fq": f"organization:{org}", "rows": 1000})
    check(narrowed["count"] == org_items[0]["count"], f"q + fq organization:{org} gives the facet's count")
    by_org = ck.call_action("package_search", {"fq": f"organization:{org}", "rows": 1000})
    check(by_org["count"] >= narrowed["count"] and all(p["organization"]["name"] == org for p in by_org["results"]),
          f"fq organization:{org} gives {by_org['count']}")
    tag = found["search_facets"]["tags"]["items"][0]["name"]
    by_tag = ck.call_action("package_search", {"fq": f'tags:"{tag}"', "rows": 1000})
    check(by_tag["count"] >= 1 and all(any(t["name"] == tag for t in p["tags"]) for p in by_tag["results"]),
          f"fq tags:\"{tag}\" gives {by_tag['count']}")

    pkg = ck.action.package_show(id=found["results"][0]["name"])
    check(pkg["name"] == found["results"][0]["name"] and pkg["resources"] and pkg["isopen"], "package_show")
    same = anon_get.action.package_show(id=pkg["id"])
    check(same["name"] == pkg["name"], "package_show by id, over GET")

    orgs = ck.action.organization_list()
    check(org in orgs, f"organization_list has {org}")
    full = ck.action.organization_show(id=org, include_datasets=True)
    check(full["package_count"] == by_org["count"] == len(full["packages"]), "organization_show counts its datasets")
    check(ck.action.license_list() and ck.action.tag_list() and ck.action.group_list(), "license_list, tag_list, group_list")

    res = pkg["resources"][0]
    check(ck.action.resource_show(id=res["id"])["package_id"] == pkg["id"], "resource_show")
    page = ck.action.datastore_search(resource_id=res["id"], limit=5)
    check(len(page["records"]) == min(5, page["total"]) and page["fields"], f"datastore_search: {page['total']} rows")
    field = page["fields"][0]["id"]
    value = page["records"][0][field]
    filtered = ck.action.datastore_search(resource_id=res["id"], filters={field: value}, limit=1000)
    check(filtered["total"] >= 1 and all(r[field] == value for r in filtered["records"]),
          f"datastore_search filters {field}={value!r}: {filtered['total']} rows")
    with urllib.request.urlopen(f"{base}/api/v1/datasets/{pkg['name']}/resources/{res['kho_table']}/rows?limit=0") as r:
        check(json.load(r)["total"] == page["total"], "datastore_search total equals the rows API's")

    try:
        ck.action.package_show(id="khong-co-bo-du-lieu-nay")
        check(False, "package_show of a missing dataset fails")
    except ckanapi.NotFound:
        check(True, "package_show of a missing dataset raises NotFound")

    # A harvester's incremental query, paged until an empty page: every open dataset once.
    seen, start = [], 0
    while True:
        page = anon_get.call_action("package_search", {
            "fq": "metadata_modified:[2000-01-01T00:00:00Z TO *]", "sort": "id asc", "rows": 3, "start": start})
        if not page["results"]:
            break
        seen += [p["id"] for p in page["results"]]
        start += 3
    check(len(seen) == len(set(seen)) == len(names), f"harvester paging returned {len(seen)} datasets, each once")
    check(seen == sorted(seen), "in id order")
    print("ckanapi: all checks passed")


if __name__ == "__main__":
    main(sys.argv[1].rstrip("/") if len(sys.argv) > 1 else "http://127.0.0.1:8080")
