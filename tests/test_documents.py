"""Attributed quotes from documents: the seed's six exactly, and its defects tolerated elsewhere."""

from __future__ import annotations

import pytest

from pipeline.documents import extract_quotes, read_document
from pipeline.paths import PROJECT_ROOT

SEEDS = PROJECT_ROOT.parent / "shared" / "seeds"

SEED_ATTRIBUTIONS = [
    ("Chicago Department of Public Health", "DASH", "Using impact stories"),
    ("NYC Department of Health and Mental Hygiene", "", "We usually try"),
    ("Providence Center for Outcomes Research and Education", "CHP", "We have found"),
    ("University of Vermont", "CHP", "We sought to identify"),
    ("Center for Health Care Services", "DASH", "Collaborative data-driven"),
    ("Public Health Seattle & King County", "DASH", "Other methods"),
]


@pytest.mark.skipif(not SEEDS.is_dir(), reason="shared seeds absent")
def test_seed_document_yields_exactly_its_six_attributed_quotes():
    found = [q for path in sorted(SEEDS.glob("*.txt")) for q in read_document(path).quotes]
    assert [(q.organization, q.program) for q in found] == [(o, p) for o, p, _ in SEED_ATTRIBUTIONS]
    for quote, (_, _, start) in zip(found, SEED_ATTRIBUTIONS):
        assert quote.text.startswith(start)
        assert not quote.text.endswith(("”", '"'))
    # inner marks are kept; only the enclosing ones go
    assert "“high utilizer”" in found[4].text
    assert found[0].text.endswith("real-time data can be shared.")


def test_defects_tolerated():
    text = (
        "Intro prose that sets the scene.\n\n"
        "Data helped us, and it saved money.”\n"  # opening mark missing
        "-Springfield Department of Public Health DASH)\n\n"  # unbalanced parenthesis
        '"Straight quotes work too."\n'
        "Lake County Health Department (CHP\n\n"  # no dash, unclosed parenthesis
        "“Curly quotes with an em dash.”\n"
        "— Example University\n"
    )
    found = extract_quotes(text)
    assert [(q.text, q.organization, q.program, q.line) for q in found] == [
        ("Data helped us, and it saved money.", "Springfield Department of Public Health", "DASH", 3),
        ("Straight quotes work too.", "Lake County Health Department", "CHP", 6),
        ("Curly quotes with an em dash.", "Example University", "", 9),
    ]


def test_prose_headings_and_unattributed_quotes_are_not_quotes():
    text = (
        "We often hear that “costs are high” in prose.\n\n"
        "“A quote with nobody named after it.”\n\n"
        "3. Reducing Costs of Care is a Powerful Driver\n"
        "Learn more\n\n"
        "“A quote followed by a heading paragraph.”\n\n"
        "Next Steps For The Field\n"
    )
    assert extract_quotes(text) == []


def test_attribution_in_its_own_paragraph_needs_a_dash_or_program():
    assert [q.organization for q in extract_quotes("“Quoted.”\n\n-Acme Coalition\n")] == ["Acme Coalition"]
    assert [q.program for q in extract_quotes("“Quoted.”\n\nAcme Coalition (DASH)\n")] == ["DASH"]


def test_lead_in_prose_is_dropped():
    text = "As one director put it, “Sharing data cut our jail bookings.”\n-Pine County Sheriff's Office\n"
    [quote] = extract_quotes(text)
    assert quote.text == "Sharing data cut our jail bookings."
    assert quote.organization == "Pine County Sheriff's Office"


def test_parenthetical_that_is_not_a_program_stays_in_the_name():
    [quote] = extract_quotes("“We link records.”\n-Actionable Intelligence for Social Policy (AISP)\n")
    assert (quote.organization, quote.program) == ("Actionable Intelligence for Social Policy (AISP)", "")


def test_markdown_and_html_documents(tmp_path):
    markdown = tmp_path / "post.MD"
    markdown.write_text(
        "# Findings\n\n> “Real-time data\n> changed our referrals.”\n>\n> — *University of Vermont (CHP)*\n", encoding="utf-8"
    )
    html = tmp_path / "post.html"
    html.write_text(
        "<html><head><style>p {}</style></head><body><h2>Findings</h2>"
        "<blockquote><p>&ldquo;Show them the   dashboard\n and they understand.&rdquo;</p>"
        "<p>-Providence Center for Outcomes Research and Education (CHP)</p></blockquote>"
        "<script>var x = '“no”';</script></body></html>",
        encoding="utf-8",
    )
    [md_quote] = read_document(markdown).quotes
    assert (md_quote.text, md_quote.organization, md_quote.program) == (
        "Real-time data changed our referrals.", "University of Vermont", "CHP")
    [html_quote] = read_document(html).quotes
    assert html_quote.text == "Show them the dashboard and they understand."
    assert html_quote.organization == "Providence Center for Outcomes Research and Education"
    assert read_document(html).encoding == "html"
