"""Web sources against a site served on 127.0.0.1 by the test itself (with ETags)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from apps.knowledge import crawl, runtime
from apps.knowledge.models import Document, Source
from apps.knowledge.selectors import chunk_search
from apps.knowledge.services import source_create
from apps.knowledge.sync import source_sync
from tests.support.knowledge import knowledge_store  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("knowledge_store")]


@dataclass
class Site:
    """A tiny website: path -> (content type, body). Records every request it gets."""

    pages: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    status_override: dict[str, int] = field(default_factory=dict)
    url: str = ""

    def html(self, path: str, title: str, body: str, links: list[str] = ()) -> None:
        anchors = "".join(f'<a href="{link}">{link}</a> ' for link in links)
        page = (
            f"<html><head><title>{title}</title></head><body><main><h1>{title}</h1>"
            f"<p>{body}</p><nav>{anchors}</nav></main></body></html>"
        )
        self.pages[path] = ("text/html; charset=utf-8", page.encode())

    def requests_for(self, path: str) -> list[dict[str, str]]:
        return [headers for p, headers in self.requests if p == path]


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            if self.path in site.status_override:
                self.send_response(site.status_override[self.path])
                self.end_headers()
                return
            if self.path not in site.pages:
                self.send_response(404)
                self.end_headers()
                return
            content_type, body = site.pages[self.path]
            etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'  # noqa: S324 — an ETag
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("ETag", etag)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def site(settings) -> Iterator[Site]:
    settings.KNOWLEDGE_CRAWL_ALLOW_PRIVATE = True
    site = Site()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
    site.url = f"http://127.0.0.1:{server.server_address[1]}"
    site.pages["/robots.txt"] = ("text/plain", b"User-agent: *\nDisallow: /private/\n")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield site
    server.shutdown()
    server.server_close()


@pytest.fixture
def embed_calls(monkeypatch):
    embedder = runtime.get_embedder()
    calls: list[int] = []
    original = embedder.embed_documents

    def counting(texts, **kwargs):
        calls.append(len(texts))
        return original(texts, **kwargs)

    monkeypatch.setattr(embedder, "embed_documents", counting)
    return calls


def _sync(tenant, source) -> Source:
    source_sync(source=source)
    source.refresh_from_db()
    return source


def test_url_source_resync_sends_if_none_match_and_embeds_nothing(tenant_a, site, embed_calls):
    site.html("/returns", "Returns policy", "Anvils may be returned within 30 days of delivery.")
    source = source_create(
        tenant=tenant_a.tenant, kind="url", name="Returns", url=f"{site.url}/returns", sync=False
    )
    source = _sync(tenant_a.tenant, source)
    assert source.status == Source.Status.SYNCED, source.error
    assert source.etag
    assert sum(embed_calls) == source.chunk_count > 0
    first = site.requests_for("/returns")[0]
    assert "if-none-match" not in first
    assert "SupportAI" in first["user-agent"]

    embed_calls.clear()
    source = _sync(tenant_a.tenant, source)
    second = site.requests_for("/returns")[1]
    assert second["if-none-match"] == source.etag
    assert embed_calls == []
    assert source.status == Source.Status.SYNCED
    results = chunk_search(tenant=tenant_a.tenant, query="how many days to return an anvil")
    assert results and results[0].url == f"{site.url}/returns"


def test_changed_page_is_reembedded(tenant_a, site, embed_calls):
    site.html("/faq", "FAQ", "Our support line opens at 9am.")
    source = source_create(
        tenant=tenant_a.tenant, kind="url", name="FAQ", url=f"{site.url}/faq", sync=False
    )
    _sync(tenant_a.tenant, source)
    embed_calls.clear()
    site.html("/faq", "FAQ", "Our support line opens at 7am on weekdays.")
    source = _sync(tenant_a.tenant, source)
    assert sum(embed_calls) >= 1
    results = chunk_search(tenant=tenant_a.tenant, query="when does the support line open")
    assert "7am" in results[0].text
    assert Document.objects.for_tenant(tenant_a.tenant).get(source=source).version == 2


def test_crawl_follows_same_site_links_to_max_depth_and_obeys_robots(tenant_a, site):
    site.html(
        "/", "Home", "Welcome to Acme.", ["/guide", "/private/salaries", "https://example.org/"]
    )
    site.html("/guide", "Guide", "The guide explains anvil care.", ["/guide/oiling"])
    site.html("/guide/oiling", "Oiling", "Oil your anvil monthly with linseed oil.", ["/deep"])
    site.html("/deep", "Deep", "This page is three links away from home.")
    site.html("/private/salaries", "Salaries", "Secret salaries.")
    source = source_create(
        tenant=tenant_a.tenant,
        kind="sitemap",
        name="Site",
        url=f"{site.url}/",
        max_depth=2,
        sync=False,
    )
    source = _sync(tenant_a.tenant, source)
    assert source.status == Source.Status.SYNCED, source.error
    keys = set(Document.objects.for_tenant(tenant_a.tenant).values_list("key", flat=True))
    assert keys == {f"{site.url}/", f"{site.url}/guide", f"{site.url}/guide/oiling"}
    assert site.requests_for("/private/salaries") == []
    assert site.requests_for("/deep") == []
    assert len(site.requests_for("/robots.txt")) == 1

    # Second crawl: every page answers 304, and the crawl still reaches the same pages.
    source = _sync(tenant_a.tenant, source)
    assert source.document_count == 3
    assert all("if-none-match" in h for h in site.requests_for("/guide/oiling")[1:])


def test_sitemap_index_lists_pages_and_dropped_pages_are_removed(tenant_a, site):
    site.pages["/sitemap.xml"] = (
        "application/xml",
        f"""<?xml version="1.0" encoding="UTF-8"?>
<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
  <sitemap><loc>{site.url}/sitemap-docs.xml</loc></sitemap>
</sitemapindex>""".encode(),
    )

    def urlset(paths: list[str]) -> bytes:
        entries = "".join(f"<url><loc>{site.url}{p}</loc></url>" for p in paths)
        return (
            '<?xml version="1.0"?><urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
            f"{entries}</urlset>"
        ).encode()

    site.pages["/sitemap-docs.xml"] = ("application/xml", urlset(["/a", "/b"]))
    site.html("/a", "Page A", "Alpha anvils are the lightest model we sell.")
    site.html("/b", "Page B", "Bravo anvils come with a lifetime warranty card.")
    source = source_create(
        tenant=tenant_a.tenant,
        kind="sitemap",
        name="Docs",
        url=f"{site.url}/sitemap.xml",
        sync=False,
    )
    source = _sync(tenant_a.tenant, source)
    assert source.status == Source.Status.SYNCED, source.error
    assert source.document_count == 2
    assert chunk_search(tenant=tenant_a.tenant, query="Bravo lifetime warranty card")[0].title == (
        "Page B"
    )

    site.pages["/sitemap-docs.xml"] = ("application/xml", urlset(["/a"]))
    source = _sync(tenant_a.tenant, source)
    assert source.document_count == 1
    results = chunk_search(tenant=tenant_a.tenant, query="Bravo lifetime warranty card")
    assert all(r.title != "Page B" for r in results)


def test_loopback_address_is_refused_unless_allowed(tenant_a, site, settings):
    settings.KNOWLEDGE_CRAWL_ALLOW_PRIVATE = False
    site.html("/x", "X", "Internal page.")
    source = source_create(
        tenant=tenant_a.tenant, kind="url", name="X", url=f"{site.url}/x", sync=False
    )
    source = _sync(tenant_a.tenant, source)
    assert source.status == Source.Status.FAILED
    assert "private or local address" in source.error
    assert site.requests == []


def test_server_error_is_transient_and_keeps_what_was_indexed(tenant_a, site):
    site.html("/hours", "Hours", "The shop is open from 8 to 18.")
    source = source_create(
        tenant=tenant_a.tenant, kind="url", name="Hours", url=f"{site.url}/hours", sync=False
    )
    _sync(tenant_a.tenant, source)
    site.status_override["/hours"] = 503
    with pytest.raises(crawl.TransientFetchError):
        source_sync(source=source)
    source.refresh_from_db()
    assert source.status == Source.Status.FAILED
    assert "503" in source.error
    assert chunk_search(tenant=tenant_a.tenant, query="opening hours of the shop")


def test_sync_task_retries_transient_errors_then_records_the_failure(tenant_a, site):
    from apps.knowledge.tasks import MAX_FETCH_RETRIES, sync_source

    site.status_override["/down"] = 502
    source = source_create(
        tenant=tenant_a.tenant, kind="url", name="Down", url=f"{site.url}/down", sync=False
    )
    # Run in-process: Celery re-runs an eager task at once on retry (no countdown).
    result = sync_source.apply(args=[tenant_a.tenant.pk, source.pk])
    assert result.successful()
    assert len(site.requests_for("/down")) == MAX_FETCH_RETRIES + 1
    source.refresh_from_db()
    assert source.status == Source.Status.FAILED
    assert "502" in source.error


def test_missing_page_fails_with_a_readable_reason(tenant_a, site):
    source = source_create(
        tenant=tenant_a.tenant, kind="url", name="Gone", url=f"{site.url}/nope", sync=False
    )
    source = _sync(tenant_a.tenant, source)
    assert source.status == Source.Status.FAILED
    assert "404" in source.error


def test_extract_links_keeps_same_site_documents_only():
    html = b"""<a href="/a#top">a</a><a href="b.html">b</a><a href="https://other.example/x">x</a>
    <a href="/logo.png">img</a><a href="mailto:x@y.z">m</a><a href="/a">dup</a>
    <a href="/manual.pdf">pdf</a>"""
    links = crawl.extract_links(html, page_url="https://acme.example/docs/index.html")
    assert links == [
        "https://acme.example/a",
        "https://acme.example/docs/b.html",
        "https://acme.example/manual.pdf",
    ]
