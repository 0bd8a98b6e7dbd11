"""Parser tests: every format on good input, and every failure mode as ParseError."""

from __future__ import annotations

import io
import zipfile

import pytest

from apps.knowledge.parsing import ParseError, ParseLimits, detect_format, parse_document
from apps.knowledge.tests.docgen import make_docx, make_pdf

MARKDOWN = b"""# Billing

Invoices are sent monthly.

## Refunds

Refunds take *5* business days.

- cards: 5 days
- bank: 10 days

### Card refunds

Card details here.

## Invoices

| Plan | Price |
|------|-------|
| Pro  | 10    |
"""

HTML = b"""<!doctype html><html><head><title>Acme Help</title></head><body>
<nav><a href="/">Home</a> <a href="/pricing">Pricing</a> <a href="/login">Log in</a></nav>
<main><article>
<h1>Billing</h1>
<p>Our billing runs monthly. Invoices are emailed on the first business day of each month
to the account owner and can be downloaded from the dashboard.</p>
<h2>Refunds</h2>
<p>Refunds are processed within five business days after approval by the support team.
You can request a refund from the billing page of the dashboard.</p>
</article></main>
<footer>Copyright 2024 Acme Inc. All rights reserved. Cookie settings.</footer>
</body></html>"""


def paths(doc):
    return [s.heading_path for s in doc.sections]


def test_markdown_headings_become_paths():
    doc = parse_document(data=MARKDOWN, filename="billing.md")
    assert doc.title == "Billing"
    assert paths(doc) == [
        ("Billing",),
        ("Billing", "Refunds"),
        ("Billing", "Refunds", "Card refunds"),
        ("Billing", "Invoices"),
    ]
    refunds = doc.sections[1].text
    assert "- cards: 5 days" in refunds  # list structure is kept
    assert "| Pro" in doc.sections[3].text
    assert doc.metadata["format"] == "markdown"


def test_markdown_by_content_type_and_generic_type_prefers_suffix():
    assert detect_format(data=b"# x", filename="a", content_type="text/markdown") == "markdown"
    assert detect_format(data=b"# x", filename="a.md", content_type="text/plain") == "markdown"
    assert detect_format(data=b"x", filename="a.txt", content_type=None) == "text"


def test_html_main_content_with_headings():
    doc = parse_document(data=HTML, filename="page.html", content_type="text/html")
    assert ("Billing", "Refunds") in paths(doc)
    text = doc.text
    assert "five business days" in text
    assert "Cookie settings" not in text  # boilerplate removed
    assert doc.metadata["format"] == "html"


def test_html_without_main_content_falls_back_to_text():
    doc = parse_document(
        data=b"<html><body><div>Short answer.</div></body></html>", filename="x.htm"
    )
    assert "Short answer." in doc.text


def test_pdf_pages_and_outline():
    data = make_pdf(
        ["Welcome to Acme.\nThis is the intro.", "Refunds take five days."],
        outline=[("Intro", 0), ("Refunds", 1)],
        title="Acme Manual",
    )
    doc = parse_document(data=data, filename="manual.pdf")
    assert doc.title == "Acme Manual"
    assert doc.metadata["pages"] == 2
    assert [(s.heading_path, s.page) for s in doc.sections] == [(("Intro",), 1), (("Refunds",), 2)]
    assert "five days" in doc.sections[1].text


def test_pdf_with_owner_password_only_is_readable():
    doc = parse_document(data=make_pdf(["Print restricted."], owner_password="o"), filename="r.pdf")
    assert "Print restricted." in doc.text


def test_encrypted_pdf_is_rejected():
    data = make_pdf(["Top secret."], user_password="pw", owner_password="o")
    with pytest.raises(ParseError, match="password"):
        parse_document(data=data, filename="secret.pdf")


def test_corrupt_pdf_is_rejected():
    good = make_pdf(["Hello there."])
    for data in (b"%PDF-1.7\n" + b"\x00garbage" * 50, good[: len(good) // 3]):
        with pytest.raises(ParseError):
            parse_document(data=data, filename="broken.pdf")


def test_pdf_page_limit():
    data = make_pdf(["one", "two", "three"])
    with pytest.raises(ParseError, match="too many pages"):
        parse_document(data=data, filename="long.pdf", limits=ParseLimits(max_pdf_pages=2))


def test_pdf_without_text_is_rejected():
    with pytest.raises(ParseError, match="no extractable text"):
        parse_document(data=make_pdf([""]), filename="scan.pdf")


def test_docx_heading_styles_and_tables():
    data = make_docx(
        [
            ("title", "Acme Guide"),
            ("h1", "Billing"),
            ("p", "Billing is monthly."),
            ("h2", "Refunds"),
            ("p", "Refunds take five days."),
            ("table", "Plan|Price;Pro|10"),
            ("h1", "Account"),
            ("p", "Reset your password from the login page."),
        ]
    )
    doc = parse_document(data=data, filename="guide.docx")
    assert doc.title == "Acme Guide"
    assert paths(doc) == [("Billing",), ("Billing", "Refunds"), ("Account",)]
    assert "Pro | 10" in doc.sections[1].text


def test_corrupt_docx_is_rejected():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("word/document.xml", "<not really xml")
    with pytest.raises(ParseError):
        parse_document(data=buf.getvalue(), filename="broken.docx")
    with pytest.raises(ParseError):
        parse_document(data=b"PK\x03\x04 truncated zip", filename="x.docx")


def test_zip_that_is_not_docx_is_unsupported():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("hello.txt", "hi")
    with pytest.raises(ParseError, match="Unsupported"):
        parse_document(data=buf.getvalue(), filename="archive.zip")


def test_docx_compression_bomb_is_rejected():
    data = make_docx([("p", "x" * 1000)])
    with pytest.raises(ParseError, match="expands"):
        parse_document(
            data=data, filename="a.docx", limits=ParseLimits(max_docx_uncompressed_bytes=1000)
        )


def test_plain_text_and_encodings():
    doc = parse_document(data="Café prices.\r\n\r\nSecond para.".encode("cp1252"), filename="a.txt")
    assert doc.title == "a"
    assert "Café" in doc.text
    assert doc.sections[0].heading_path == ()
    doc = parse_document(data="\ufeffUTF-8 with BOM \u2013 ok".encode(), filename="b.txt")
    assert doc.text.startswith("UTF-8")


@pytest.mark.parametrize("data", [b"", b"   \n\t  "])
def test_empty_file(data):
    with pytest.raises(ParseError, match="empty"):
        parse_document(data=data, filename="empty.txt")


def test_markdown_with_only_headings_has_no_text():
    with pytest.raises(ParseError, match="no extractable text"):
        parse_document(data=b"# Title\n\n## Sub\n", filename="h.md")


def test_oversized_file():
    with pytest.raises(ParseError, match="too large"):
        parse_document(data=b"x" * 101, filename="big.txt", limits=ParseLimits(max_bytes=100))


def test_too_much_extracted_text():
    with pytest.raises(ParseError, match="too much text"):
        parse_document(data=b"word " * 100, filename="a.txt", limits=ParseLimits(max_chars=50))


@pytest.mark.parametrize(
    ("data", "filename", "content_type"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00binary", "logo.png", "image/png"),
        (b"MZ\x90\x00", "setup.exe", None),
        (b"{}", "data.json", "application/json"),
    ],
)
def test_unsupported_types(data, filename, content_type):
    with pytest.raises(ParseError, match="Unsupported"):
        parse_document(data=data, filename=filename, content_type=content_type)


def test_binary_disguised_as_text():
    with pytest.raises(ParseError):
        parse_document(data=b"\x00\x01\x02\x03" * 100, filename="notes.txt")


def test_declared_pdf_without_pdf_bytes():
    with pytest.raises(ParseError, match="not a valid PDF"):
        parse_document(data=b"hello", filename="fake.pdf")


def test_library_exceptions_are_wrapped(monkeypatch):
    import trafilatura

    def boom(*args, **kwargs):
        raise RecursionError("deeply nested html")

    monkeypatch.setattr(trafilatura, "extract", boom)
    with pytest.raises(ParseError, match="could not be read"):
        parse_document(data=HTML, filename="page.html")
