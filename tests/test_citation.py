"""LICENSE (MIT, "geomopt contributors"), CITATION.cff (CFF 1.2.0: this repository, and the four
papers under references), and run metadata that records the installed scientific packages."""

from importlib import metadata

import yaml

from geomopt.results import REPO_ROOT, SCIENTIFIC_PACKAGES, run_meta

# CFF 1.2.0 keys (schema.json of citation-file-format 1.2.0) used or allowed here
TOP_KEYS = {"abstract", "authors", "cff-version", "commit", "contact", "date-released", "doi", "identifiers",
            "keywords", "license", "license-url", "message", "preferred-citation", "references", "repository",
            "repository-artifact", "repository-code", "title", "type", "url", "version"}
REFERENCE_KEYS = {"abbreviation", "authors", "conference", "identifiers", "journal", "notes", "title", "type", "url",
                  "year", "volume", "pages", "doi"}
PAPERS = {  # arXiv id -> (title, family names), as in shared/specs and the papers' listings
    "2605.27733": ("Can Entry-Wise Clipping Give Spectral Control of Stochastic Gradients?",
                   ["Song", "Bai", "Zhang", "Bullins", "Gleich"]),
    "2602.06880": ("Decoupling Variance and Scale-Invariant Updates in Adaptive Gradient Descent for Unified "
                   "Vector and Matrix Optimization", ["Song", "Bai", "Zhang", "Bullins", "Gleich"]),
    "2409.19200": ("Faster Acceleration for Steepest Descent", ["Bai", "Bullins"]),
    "2506.06606": ("Stacey: Promoting Stochastic Steepest Descent via Accelerated ℓp-Smooth Nonconvex Optimization",
                   ["Luo", "Bai", "Li", "Drineas", "Zhang", "Bullins"]),
    "2505.23760": ("Model Immunization from a Condition Number Perspective", ["Zheng", "Bai", "Bullins", "Yeh"]),
}


def test_license_is_mit_for_the_contributors():
    text = (REPO_ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "Copyright (c) 2026 geomopt contributors" in text


def test_citation_cff_cites_the_repository_and_the_four_papers():
    cff = yaml.safe_load((REPO_ROOT / "CITATION.cff").read_text())
    assert set(cff) <= TOP_KEYS and cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert cff["message"] and cff["title"].startswith("geomopt") and cff["license"] == "MIT"
    assert cff["authors"] == [{"name": "geomopt contributors"}]
    found = {}
    for ref in cff["references"]:
        assert set(ref) <= REFERENCE_KEYS and ref["type"] in ("article", "conference-paper"), ref
        assert isinstance(ref["year"], int) and all(a["family-names"] for a in ref["authors"])
        (ident,) = ref["identifiers"]
        assert ident["type"] == "other" and ident["value"].startswith("arXiv:")
        arxiv = ident["value"].removeprefix("arXiv:")
        assert ref["url"] == f"https://arxiv.org/abs/{arxiv}"
        found[arxiv] = (ref["title"], [a["family-names"] for a in ref["authors"]])
    assert found == PAPERS


def test_run_metadata_records_the_installed_scientific_packages():
    packages = run_meta()["packages"]
    assert {"torch", "numpy", "scipy", "pandas", "matplotlib"} <= set(packages) <= set(SCIENTIFIC_PACKAGES)
    assert all(packages[name] == metadata.version(name) for name in packages)
