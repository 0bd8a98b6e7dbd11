"""Fetching web sources politely: one page, a sitemap (or sitemap index), or a same-site crawl.

- conditional GETs with the validators stored per document (`If-None-Match`,
  `If-Modified-Since`); a 304 means the page is unchanged and nothing is parsed or embedded;
- robots.txt is read once per host (protego) and honoured, crawl-delay included (capped);
- a User-Agent that names the bot, timeouts on every request, a size cap on every body;
- addresses on loopback, private, link-local or reserved networks are refused unless
  `KNOWLEDGE_CRAWL_ALLOW_PRIVATE` is set (a URL source must not become a way to read the
  server's own network). Redirects are followed by hand so every hop is checked.
"""

from __future__ import annotations

import enum
import logging
import posixpath
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from urllib.parse import urldefrag, urljoin, urlparse
from xml.etree import ElementTree

import httpx
from django.conf import settings
from protego import Protego

from apps.core import netguard

logger = logging.getLogger(__name__)

MAX_REDIRECTS = 5
MAX_SITEMAPS = 50
MAX_CRAWL_DELAY_S = 2.0
FETCHABLE_TYPES = (
    "text/html",
    "application/xhtml+xml",
    "text/plain",
    "text/markdown",
    "text/x-markdown",
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
)
SKIP_EXTENSIONS = frozenset(
    [
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".svg",
        ".webp",
        ".ico",
        ".css",
        ".js",
        ".mjs",
        ".json",
        ".zip",
        ".gz",
        ".tar",
        ".mp3",
        ".mp4",
        ".avi",
        ".mov",
        ".woff",
        ".woff2",
        ".ttf",
        ".eot",
        ".exe",
        ".dmg",
        ".iso",
        ".xlsx",
        ".pptx",
        ".doc",
        ".xls",
        ".ppt",
        ".rss",
        ".atom",
    ]
)


class FetchError(Exception):
    """The source itself cannot be fetched (bad URL, refused address, 4xx, robots.txt)."""


class TransientFetchError(FetchError):
    """Worth retrying later: timeouts, connection errors, 5xx, 429."""


class PageStatus(enum.StrEnum):
    OK = "ok"
    NOT_MODIFIED = "not_modified"
    GONE = "gone"  # 404/410 or no longer a fetchable document: removed from the index
    ERROR = "error"  # failed this time: what was indexed before stays


@dataclass
class KnownPage:
    etag: str = ""
    last_modified: str = ""
    links: list[str] = field(default_factory=list)


@dataclass
class Page:
    url: str
    status: PageStatus
    data: bytes = b""
    content_type: str | None = None
    etag: str = ""
    last_modified: str = ""
    links: list[str] = field(default_factory=list)
    error: str = ""
    discovered: int = 0  # pages known to the crawl so far (for progress)

    @property
    def filename(self) -> str:
        name = posixpath.basename(urlparse(self.url).path)
        return name or "index.html"


class _LinkParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.base: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            rel = (values.get("rel") or "").lower()
            if "nofollow" not in rel:
                self.hrefs.append(values["href"] or "")
        elif tag == "base" and values.get("href") and self.base is None:
            self.base = values["href"]


def extract_links(html: bytes, *, page_url: str) -> list[str]:
    """Same-site http(s) links of an HTML page, absolute, without fragments, in page order."""
    parser = _LinkParser()
    try:
        parser.feed(html.decode("utf-8", errors="replace"))
    except Exception:  # noqa: BLE001 — a broken page simply yields fewer links
        logger.debug("link extraction failed for %s", page_url)
    base = urljoin(page_url, parser.base) if parser.base else page_url
    origin = _origin(page_url)
    links: list[str] = []
    seen: set[str] = set()
    for href in parser.hrefs:
        url = normalise_url(urljoin(base, href.strip()))
        if not url or _origin(url) != origin or url in seen:
            continue
        if posixpath.splitext(urlparse(url).path)[1].lower() in SKIP_EXTENSIONS:
            continue
        seen.add(url)
        links.append(url)
    return links


def normalise_url(url: str) -> str:
    url, _ = urldefrag(url)
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        return ""
    return parsed._replace(path=parsed.path or "/").geturl()


def _origin(url: str) -> tuple[str, str]:
    parsed = urlparse(url)
    return parsed.scheme, parsed.netloc.lower()


def parse_sitemap(data: bytes) -> tuple[str, list[str]]:
    """('urlset' | 'sitemapindex' | '', locations) of a sitemap document."""
    try:
        # Sitemaps are plain data; entity expansion is refused by expat defaults in 3.11+.
        root = ElementTree.fromstring(data)  # noqa: S314
    except ElementTree.ParseError:
        return "", []
    kind = root.tag.rsplit("}", 1)[-1]
    if kind not in ("urlset", "sitemapindex"):
        return "", []
    locations = [
        (el.text or "").strip()
        for el in root.iter()
        if el.tag.rsplit("}", 1)[-1] == "loc" and (el.text or "").strip()
    ]
    return kind, locations


def _looks_like_sitemap(page: Page) -> bool:
    ctype = (page.content_type or "").lower()
    head = page.data[:512].lstrip().lower()
    return (
        "xml" in ctype
        or head.startswith(b"<?xml")
        or b"<urlset" in head
        or b"<sitemapindex" in head
    )


class Crawler:
    """Fetches pages for one sync. Not thread-safe; make one per sync."""

    def __init__(
        self,
        *,
        user_agent: str,
        timeout: float,
        max_bytes: int,
        allow_private: bool,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.user_agent = user_agent
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self.client = httpx.Client(
            headers={"User-Agent": user_agent},
            timeout=httpx.Timeout(timeout),
            follow_redirects=False,
            # Connects only to the addresses it checked, so DNS cannot rebind between
            # `_check_address` and the connection.
            transport=transport or netguard.guarded_transport(allow_private=allow_private),
        )
        self._robots: dict[tuple[str, str], Protego | None] = {}
        self._last_request: dict[tuple[str, str], float] = {}
        self.complete = True
        self.requests = 0

    @classmethod
    def from_settings(cls) -> Crawler:
        return cls(
            user_agent=settings.KNOWLEDGE_CRAWL_USER_AGENT,
            timeout=settings.KNOWLEDGE_CRAWL_TIMEOUT,
            max_bytes=settings.KNOWLEDGE_CRAWL_MAX_BYTES,
            allow_private=settings.KNOWLEDGE_CRAWL_ALLOW_PRIVATE,
        )

    def close(self) -> None:
        self.client.close()

    # ------------------------------------------------------------------ requests

    def _check_address(self, url: str) -> None:
        if self.allow_private:
            return
        host = urlparse(url).hostname or ""
        try:
            addresses = netguard.resolve(host)
        except OSError as exc:
            raise TransientFetchError(f"{host}: the name does not resolve ({exc})") from exc
        for address in addresses:
            if not netguard.address_is_public(address):
                raise FetchError(
                    f"{host} resolves to a private or local address ({address}); refused"
                )

    def _get(
        self, url: str, headers: dict[str, str] | None = None
    ) -> tuple[str, httpx.Response, bytes]:
        """GET with manual redirects, address checks, politeness and a size cap."""
        for _ in range(MAX_REDIRECTS + 1):
            self._check_address(url)
            self._polite_wait(url)
            self.requests += 1
            try:
                with self.client.stream("GET", url, headers=headers or {}) as response:
                    if response.has_redirect_location:
                        location = response.headers.get("location", "")
                        url = normalise_url(urljoin(url, location))
                        if not url:
                            raise FetchError(f"redirect to an unsupported URL: {location!r}")
                        continue
                    declared = int(response.headers.get("content-length") or 0)
                    if declared > self.max_bytes:
                        raise FetchError(f"{url}: too large ({declared:,} bytes)")
                    body = bytearray()
                    for piece in response.iter_bytes():
                        body.extend(piece)
                        if len(body) > self.max_bytes:
                            raise FetchError(f"{url}: larger than {self.max_bytes:,} bytes")
                    return url, response, bytes(body)
            except httpx.TimeoutException as exc:
                raise TransientFetchError(f"{url}: timed out") from exc
            except httpx.TransportError as exc:
                raise TransientFetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
        raise FetchError(f"{url}: too many redirects")

    def _polite_wait(self, url: str) -> None:
        origin = _origin(url)
        robots = self._robots.get(origin)
        delay = (
            min(float(robots.crawl_delay(self.user_agent) or 0), MAX_CRAWL_DELAY_S) if robots else 0
        )
        last = self._last_request.get(origin)
        if delay and last is not None:
            wait = last + delay - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        self._last_request[origin] = time.monotonic()

    def allowed(self, url: str) -> bool:
        """robots.txt says we may fetch `url` (fetched once per host; missing means yes)."""
        origin = _origin(url)
        if origin not in self._robots:
            robots_url = f"{origin[0]}://{origin[1]}/robots.txt"
            parser = None
            try:
                _, response, body = self._get(robots_url)
                if response.status_code == 200:
                    parser = Protego.parse(body.decode("utf-8", errors="replace"))
            except FetchError as exc:
                logger.info("robots.txt of %s not readable (%s); assuming allowed", origin, exc)
            self._robots[origin] = parser
        parser = self._robots[origin]
        return parser is None or parser.can_fetch(url, self.user_agent)

    def fetch(self, url: str, known: KnownPage | None = None) -> Page:
        """One page, conditionally. Raises FetchError/TransientFetchError for the caller to map."""
        headers = {}
        if known is not None and known.etag:
            headers["If-None-Match"] = known.etag
        if known is not None and known.last_modified:
            headers["If-Modified-Since"] = known.last_modified
        final_url, response, body = self._get(url, headers)
        status = response.status_code
        if status == 304:
            return Page(
                url=url,
                status=PageStatus.NOT_MODIFIED,
                etag=response.headers.get("etag", known.etag if known else ""),
                last_modified=response.headers.get(
                    "last-modified", known.last_modified if known else ""
                ),
                links=list(known.links) if known else [],
            )
        if status in (404, 410):
            return Page(url=url, status=PageStatus.GONE, error=f"HTTP {status}")
        if status == 429 or status >= 500:
            raise TransientFetchError(f"{url}: HTTP {status}")
        if status >= 400:
            raise FetchError(f"{url}: HTTP {status}")
        content_type = response.headers.get("content-type", "")
        page = Page(
            url=url,
            status=PageStatus.OK,
            data=body,
            content_type=content_type or None,
            etag=response.headers.get("etag", ""),
            last_modified=response.headers.get("last-modified", ""),
        )
        if final_url != url:
            page.links = [final_url]
        mime = content_type.split(";", 1)[0].strip().lower()
        if mime.startswith("text/html") or mime == "application/xhtml+xml":
            page.links = extract_links(body, page_url=final_url)
        return page

    # ------------------------------------------------------------------ sources

    def fetch_single(self, url: str, known: dict[str, KnownPage]) -> Iterator[Page]:
        """A URL source: the one page (its links are not followed)."""
        try:
            if not self.allowed(url):
                raise FetchError(f"{url}: robots.txt does not allow fetching this page")
            page = self.fetch(url, known.get(url))
            if page.status == PageStatus.GONE:
                raise FetchError(f"{url}: {page.error} (not found)")
            page.discovered = 1
            page.links = []
            yield page
        finally:
            self.close()

    def crawl(
        self, start_url: str, *, known: dict[str, KnownPage], max_pages: int, max_depth: int
    ) -> Iterator[Page]:
        """A sitemap source: the sitemap's pages, or a breadth-first crawl of the start page's
        site. The listing itself failing raises; single pages failing come back as ERROR."""
        try:
            if not self.allowed(start_url):
                raise FetchError(f"{start_url}: robots.txt does not allow fetching this page")
            path = urlparse(start_url).path.lower()
            start_known = None if path.endswith(".xml") else known.get(start_url)
            first = self.fetch(start_url, start_known)
            if first.status == PageStatus.GONE:
                raise FetchError(f"{start_url}: {first.error} (not found)")
            if first.status == PageStatus.OK and _looks_like_sitemap(first):
                yield from self._sitemap_pages(start_url, first.data, known, max_pages)
            else:
                yield from self._bfs(start_url, first, known, max_pages, max_depth)
        finally:
            self.close()

    def _sitemap_pages(
        self, sitemap_url: str, data: bytes, known: dict[str, KnownPage], max_pages: int
    ) -> Iterator[Page]:
        origin = _origin(sitemap_url)
        pages: list[str] = []
        queue = deque([(sitemap_url, data)])
        fetched = 0
        while queue and len(pages) < max_pages:
            url, body = queue.popleft()
            kind, locations = parse_sitemap(body)
            if not kind:
                if url == sitemap_url:
                    raise FetchError(f"{url}: not a sitemap (expected <urlset> or <sitemapindex>)")
                continue
            for location in locations:
                location = normalise_url(location)
                if not location or _origin(location) != origin:
                    continue
                if kind == "urlset":
                    if location not in pages:
                        pages.append(location)
                elif fetched < MAX_SITEMAPS:
                    fetched += 1
                    try:
                        _, response, child = self._get(location)
                    except FetchError as exc:
                        # A child sitemap we cannot read: keep the pages it listed before.
                        logger.info("child sitemap %s failed: %s", location, exc)
                        self.complete = False
                        continue
                    if response.status_code == 200:
                        queue.append((location, child))
                    else:
                        self.complete = False
        pages = pages[:max_pages]
        for url in pages:
            page = self._page(url, known.get(url))
            page.discovered = len(pages)
            yield page

    def _bfs(
        self,
        start_url: str,
        first: Page,
        known: dict[str, KnownPage],
        max_pages: int,
        max_depth: int,
    ) -> Iterator[Page]:
        seen = {start_url}
        queue: deque[tuple[str, int]] = deque()
        emitted = 0
        page: Page | None = first
        depth = 0
        url = start_url
        while True:
            if page is not None:
                emitted += 1
                if depth < max_depth:
                    for link in page.links:
                        if link not in seen and len(seen) < max_pages:
                            seen.add(link)
                            queue.append((link, depth + 1))
                page.discovered = len(seen)
                yield page
            if not queue or emitted >= max_pages:
                return
            url, depth = queue.popleft()
            if not self.allowed(url):
                page = None
                continue
            page = self._page(url, known.get(url))

    def _page(self, url: str, known: KnownPage | None) -> Page:
        """Fetch one page of a listing; failures become ERROR pages instead of raising."""
        try:
            if not self.allowed(url):
                return Page(url=url, status=PageStatus.GONE, error="disallowed by robots.txt")
            page = self.fetch(url, known)
        except FetchError as exc:
            return Page(url=url, status=PageStatus.ERROR, error=str(exc))
        if page.status == PageStatus.OK:
            mime = (page.content_type or "").split(";", 1)[0].strip().lower()
            if mime and not mime.startswith(FETCHABLE_TYPES):
                return Page(url=url, status=PageStatus.GONE, error=f"not a document ({mime})")
        return page
