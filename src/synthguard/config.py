"""Settings: from ``SYNTHGUARD_*`` environment variables and an optional TOML file.

Precedence, highest first: explicit arguments, environment variables, the config file named by
``SYNTHGUARD_CONFIG`` (else ``./synthguard.toml`` if present), defaults. Secrets (signing keys) come
from here and never from code. Values marked (verify) in ``../shared/reference`` live here, each with
a comment, so a correction is a one-line change.

=============================  ==========================  ==========================================
setting                        environment variable        meaning
=============================  ==========================  ==========================================
``provider_code``              SYNTHGUARD_PROVIDER_CODE    ContentProducer written by ``label``
``propagator_code``            SYNTHGUARD_PROPAGATOR_CODE  ContentPropagator written by ``relabel``
``signing_algorithm``          SYNTHGUARD_SIGNING_ALGORITHM  ``ed25519`` or ``sm2``; empty: no signing
``signing_key``                SYNTHGUARD_SIGNING_KEY      private key: Ed25519 PEM, or SM2 hex
``signing_key_file``           SYNTHGUARD_SIGNING_KEY_FILE the same, read from a file
``trusted_keys_file``          SYNTHGUARD_TRUSTED_KEYS_FILE  public keys that detection trusts
``database_url``               SYNTHGUARD_DATABASE_URL     the store (default SQLite in ``data_dir``)
``data_dir``                   SYNTHGUARD_DATA_DIR         where the embedded store lives
``watermark_key``              SYNTHGUARD_WATERMARK_KEY    secret key of the invisible watermarks
``watermark_p_threshold``      SYNTHGUARD_WATERMARK_P_THRESHOLD  p-value below which a mark is found
``visible_short_wording``      SYNTHGUARD_VISIBLE_SHORT_WORDING  image/video label (default AI生成)
``visible_long_wording``       SYNTHGUARD_VISIBLE_LONG_WORDING  text label (default 人工智能生成)
``visible_english_wording``    SYNTHGUARD_VISIBLE_ENGLISH_WORDING  English, only beside the Chinese
``visible_bilingual``          SYNTHGUARD_VISIBLE_BILINGUAL  add the English wording to labels
``visible_position``           SYNTHGUARD_VISIBLE_POSITION  edge or corner of image/video labels
``visible_min_glyph_fraction`` SYNTHGUARD_VISIBLE_MIN_GLYPH_FRACTION  least glyph height (0.05)
``visible_video_seconds``      SYNTHGUARD_VISIBLE_VIDEO_SECONDS  seconds a video label shows (2.0)
``visible_video_where``        SYNTHGUARD_VISIBLE_VIDEO_WHERE  start, middle, end (start required)
``visible_text_placement``     SYNTHGUARD_VISIBLE_TEXT_PLACEMENT  prefix, suffix, both or middle
``visible_audio_prompt``       SYNTHGUARD_VISIBLE_AUDIO_PROMPT  rhythm, speech or both
``visible_audio_where``        SYNTHGUARD_VISIBLE_AUDIO_WHERE  start, middle and/or end of audio
``visible_rhythm_frequency_hz`` SYNTHGUARD_VISIBLE_RHYTHM_FREQUENCY_HZ  rhythm tone (800)
``visible_rhythm_short_ms``    SYNTHGUARD_VISIBLE_RHYTHM_SHORT_MS  short tone (120)
``visible_rhythm_long_ms``     SYNTHGUARD_VISIBLE_RHYTHM_LONG_MS  long tone (360)
``visible_rhythm_gap_ms``      SYNTHGUARD_VISIBLE_RHYTHM_GAP_MS  silence between tones (120)
``visible_rhythm_level_dbfs``  SYNTHGUARD_VISIBLE_RHYTHM_LEVEL_DBFS  tone peak level (-12)
``visible_audio_padding_ms``   SYNTHGUARD_VISIBLE_AUDIO_PADDING_MS  silence around a prompt (250)
``api_session_ttl_minutes``    SYNTHGUARD_API_SESSION_TTL_MINUTES  staff login session life (480)
``api_public_rate_per_minute`` SYNTHGUARD_API_PUBLIC_RATE_PER_MINUTE  public route requests per client (60)
``api_login_rate_per_minute``  SYNTHGUARD_API_LOGIN_RATE_PER_MINUTE  login attempts per client and name (10)
``audit_checkpoint_key``       SYNTHGUARD_AUDIT_CHECKPOINT_KEY  Ed25519 PEM signing audit checkpoints
``audit_checkpoint_key_file``  SYNTHGUARD_AUDIT_CHECKPOINT_KEY_FILE  the same, read from a file
``audit_checkpoint_interval``  SYNTHGUARD_AUDIT_CHECKPOINT_INTERVAL  records between checkpoints (1000)
``audit_origin``               SYNTHGUARD_AUDIT_ORIGIN     origin line of audit checkpoints
``api_cookie_secure``          SYNTHGUARD_API_COOKIE_SECURE  session cookie over HTTPS only (true)
``api_max_request_bytes``      SYNTHGUARD_API_MAX_REQUEST_BYTES  largest request body (16 MiB)
``api_trusted_proxies``        SYNTHGUARD_API_TRUSTED_PROXIES  proxies whose X-Forwarded-For is believed
``api_argon2_time_cost``       SYNTHGUARD_API_ARGON2_TIME_COST  Argon2id passes of new password hashes (3)
``api_argon2_memory_kib``      SYNTHGUARD_API_ARGON2_MEMORY_KIB  Argon2id memory (65536 KiB)
``api_argon2_parallelism``     SYNTHGUARD_API_ARGON2_PARALLELISM  Argon2id lanes (4)
``complaint_acknowledge_hours`` SYNTHGUARD_COMPLAINT_ACKNOWLEDGE_HOURS  acknowledge within (24 h)
``complaint_decide_days``      SYNTHGUARD_COMPLAINT_DECIDE_DAYS  decide within (15 days)
``complaint_due_soon_hours``   SYNTHGUARD_COMPLAINT_DUE_SOON_HOURS  "due soon" on the clocks (24 h)
``complaint_attachment_max_bytes`` SYNTHGUARD_COMPLAINT_ATTACHMENT_MAX_BYTES  largest attachment
``complaint_attachment_max_count`` SYNTHGUARD_COMPLAINT_ATTACHMENT_MAX_COUNT  attachments a complaint
``complaint_attachment_types`` SYNTHGUARD_COMPLAINT_ATTACHMENT_TYPES  accepted attachment formats
``disposal_strike_window_days`` SYNTHGUARD_DISPOSAL_STRIKE_WINDOW_DAYS  days a strike counts (90)
``disposal_strike_weights``    SYNTHGUARD_DISPOSAL_STRIKE_WEIGHTS  weight per risk prefix
``disposal_default_weight``    SYNTHGUARD_DISPOSAL_DEFAULT_WEIGHT  weight of other strikes (1.0)
``disposal_ladder``            SYNTHGUARD_DISPOSAL_LADDER  POINTS=KIND[:DURATION] steps
``disposal_consecutive_limit`` SYNTHGUARD_DISPOSAL_CONSECUTIVE_LIMIT  consecutive violations (3)
``disposal_daily_limit``       SYNTHGUARD_DISPOSAL_DAILY_LIMIT  violations in a day (5)
``disposal_trigger_step``      SYNTHGUARD_DISPOSAL_TRIGGER_STEP  least step a trigger imposes
``disposal_restricted_functions`` SYNTHGUARD_DISPOSAL_RESTRICTED_FUNCTIONS  what a restriction takes
``report_cjk_font``            SYNTHGUARD_REPORT_CJK_FONT  CJK font for report PDFs
``identity_encryption_key``    SYNTHGUARD_IDENTITY_ENCRYPTION_KEY  AES-GCM key of identity data (base64)
``identity_hash_key``          SYNTHGUARD_IDENTITY_HASH_KEY  HMAC key of identity lookup hashes
``identity_accept_legacy_resident_id`` SYNTHGUARD_IDENTITY_ACCEPT_LEGACY_RESIDENT_ID  15-digit IDs
``identity_verifier_url``      SYNTHGUARD_IDENTITY_VERIFIER_URL  external identity verification
``identity_verifier_token``    SYNTHGUARD_IDENTITY_VERIFIER_TOKEN  its bearer token
``identity_service_timeout_seconds`` SYNTHGUARD_IDENTITY_SERVICE_TIMEOUT_SECONDS  verifier/SMS timeout
``sms_gateway_url``            SYNTHGUARD_SMS_GATEWAY_URL  SMS gateway (empty: console sender)
``sms_gateway_token``          SYNTHGUARD_SMS_GATEWAY_TOKEN  its bearer token
``sms_message_template``       SYNTHGUARD_SMS_MESSAGE_TEMPLATE  SMS text with {code} and {minutes}
``sms_code_ttl_seconds``       SYNTHGUARD_SMS_CODE_TTL_SECONDS  life of an SMS code (300)
``sms_code_max_attempts``      SYNTHGUARD_SMS_CODE_MAX_ATTEMPTS  wrong codes per challenge (5)
``sms_max_per_hour``           SYNTHGUARD_SMS_MAX_PER_HOUR  codes per number or user an hour (5)
``filing_number``              SYNTHGUARD_FILING_NUMBER    algorithm filing number (Art. 19)
``filing_link``                SYNTHGUARD_FILING_LINK      link to the public filing information
``retention_identity_days``    SYNTHGUARD_RETENTION_IDENTITY_DAYS  identity kept after closure (183)
``retention_sms_days``         SYNTHGUARD_RETENTION_SMS_DAYS  SMS challenges kept (30)
``retention_consent_days``     SYNTHGUARD_RETENTION_CONSENT_DAYS  consent subject kept after end (1095)
``retention_log_days``         SYNTHGUARD_RETENTION_LOG_DAYS  generation log user refs kept (>= 183)
=============================  ==========================  ==========================================

The trusted keys file is TOML: ``[keys]`` with one entry per key id, each ``{algorithm = "ed25519",
public_key = "<PEM or hex>"}``. The signing key's own public key is always trusted.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from synthguard.errors import ConfigError

__all__ = ["LabelRules", "Settings", "load_settings"]

ENV_PREFIX: Final = "SYNTHGUARD_"


@dataclasses.dataclass(frozen=True)
class LabelRules:
    """Character rules for label values (spec: "printable ASCII (verify the exact range)")."""

    #: (verify) The standard's allowed range; readers accept all printable ASCII.
    read_value_pattern: str = r"[\x20-\x7e]*"
    #: The safe set every known reader handles; what synthguard writes.
    write_value_pattern: str = r"[0-9A-Za-z._:\-]*"
    #: Longest member value written (a signature fits; anything longer is refused).
    max_value_length: int = 512

    @functools.cached_property
    def read_value_re(self) -> re.Pattern[str]:
        return re.compile(self.read_value_pattern)

    @functools.cached_property
    def write_value_re(self) -> re.Pattern[str]:
        return re.compile(self.write_value_pattern)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything configurable, resolved once."""

    provider_code: str = ""
    propagator_code: str = ""
    signing_algorithm: str = ""
    signing_key: str = dataclasses.field(default="", repr=False)
    signing_key_file: str = ""
    trusted_keys_file: str = ""
    database_url: str = ""
    data_dir: str = ".synthguard"
    #: Label kinds ``label`` applies when ``--kinds`` is not given (the policy: an explicit label,
    #: a watermark when ``watermark_key`` is set, and the metadata label; kinds a format cannot take
    #: are skipped with a note).
    default_kinds: tuple[str, ...] = ("visible", "watermark", "metadata")

    # --- watermark ---
    #: Secret key of the invisible watermarks (at least 16 characters); empty: no watermarking.
    watermark_key: str = dataclasses.field(default="", repr=False)
    #: A watermark is declared found only when its p-value is below this.
    watermark_p_threshold: float = 1e-6

    # --- visible labels (text, image, video) ---
    #: Short label wording (images, video); must hold an AI and a generation element.
    visible_short_wording: str = "AI生成"
    #: Long label wording (text); must hold an AI and a generation element.
    visible_long_wording: str = "人工智能生成"
    #: English wording, shown only beside the Chinese one (never alone).
    visible_english_wording: str = "AI-generated"
    #: Show the English wording after the Chinese one.
    visible_bilingual: bool = False
    #: Edge or corner of image and video labels: top-left, top, top-right, left, right, bottom-left,
    #: bottom, bottom-right.
    visible_position: str = "bottom-right"
    #: Least ink height of the label's text as a fraction of the shortest side (GB 45438: 5%).
    visible_min_glyph_fraction: float = 0.05
    #: Seconds of playback a video label is shown for at each place (GB 45438: at least 2).
    visible_video_seconds: float = 2.0
    #: Where in a video the label is shown: start, plus optionally middle and end.
    visible_video_where: tuple[str, ...] = ("start",)
    #: Where a text label goes: prefix, suffix, both or middle.
    visible_text_placement: str = "prefix"

    # --- visible labels (audio, checker) ---
    #: Audible prompt: "rhythm" (short-long-short-short, Morse "AI"), "speech" or "both".
    visible_audio_prompt: str = "rhythm"
    #: Where in audio the prompt is inserted: start, middle and/or end (at least one).
    visible_audio_where: tuple[str, ...] = ("start",)
    #: Rhythm prompt tone in Hz; no tempo or pitch is fixed by GB 45438 (one public implementation).
    visible_rhythm_frequency_hz: float = 800.0
    #: Rhythm prompt short tone in milliseconds.
    visible_rhythm_short_ms: float = 120.0
    #: Rhythm prompt long tone in milliseconds.
    visible_rhythm_long_ms: float = 360.0
    #: Rhythm prompt silence between tones in milliseconds.
    visible_rhythm_gap_ms: float = 120.0
    #: Rhythm prompt peak level in dBFS.
    visible_rhythm_level_dbfs: float = -12.0
    #: Silence inserted before and after an audible prompt, in milliseconds.
    visible_audio_padding_ms: float = 250.0

    # --- api ---
    #: Minutes a staff login session lasts (absolute, not sliding).
    api_session_ttl_minutes: int = 480
    #: Requests a minute one client address may make to the public routes (complaint portal).
    api_public_rate_per_minute: int = 60
    #: Login attempts a minute from one client address, and for one user name.
    api_login_rate_per_minute: int = 10
    #: Mark the session cookie ``Secure`` (sent over HTTPS only); false only for plain-HTTP development.
    api_cookie_secure: bool = True
    #: Largest request body accepted, in bytes (413 beyond).
    api_max_request_bytes: int = 16 * 1024 * 1024
    #: Proxy addresses whose ``X-Forwarded-For`` is believed when finding the client address.
    api_trusted_proxies: tuple[str, ...] = ()
    #: Argon2id cost of new password hashes (argon2-cffi's RFC 9106 low-memory profile by default);
    #: a stored hash made with other parameters is rehashed at the next login.
    api_argon2_time_cost: int = 3
    api_argon2_memory_kib: int = 65536
    api_argon2_parallelism: int = 4

    # --- audit ---
    #: Ed25519 private key (PEM) that signs the audit log's checkpoints; empty: checkpoints cannot be made.
    audit_checkpoint_key: str = dataclasses.field(default="", repr=False)
    #: The same, read from a file.
    audit_checkpoint_key_file: str = ""
    #: A signed checkpoint every this many audit records (0: only on demand).
    audit_checkpoint_interval: int = 1000
    #: The log's origin line in checkpoints (and the signing key's name): unique per log.
    audit_origin: str = "synthguard/audit"

    # --- casework (disposal, complaints, rumors, reports) ---
    #: (verify) Hours within which a complaint is acknowledged (Art. 12 leaves the limit to the
    #: provider, who must announce it; 24 hours is common practice, not law).
    complaint_acknowledge_hours: int = 24
    #: (verify) Days within which a complaint is decided and the complainant told (announced limit;
    #: 15 days follows common platform practice, not a figure of the Provisions).
    complaint_decide_days: int = 15
    #: A deadline this close (hours) shows as "due soon" on the staff clocks.
    complaint_due_soon_hours: int = 24
    #: Largest complaint attachment, bytes.
    complaint_attachment_max_bytes: int = 10 * 1024 * 1024
    #: Most attachments on one complaint.
    complaint_attachment_max_count: int = 5
    #: Accepted attachment formats (``media.Container`` values, found in the bytes).
    complaint_attachment_types: tuple[str, ...] = ("jpeg", "png", "webp", "gif", "pdf", "mp4", "mp3", "wav")
    #: Days a strike counts towards the ladder.
    disposal_strike_window_days: int = 90
    #: Weight of a strike per risk code or prefix (``A1=2``, ``A1.6=3``); the longest prefix wins.
    disposal_strike_weights: tuple[str, ...] = ("A1=2", "A2=1")
    #: Weight of a strike whose risk matches no entry of ``disposal_strike_weights``.
    disposal_default_weight: float = 1.0
    #: The ladder, mildest first: ``POINTS=KIND[:DURATION]`` (durations ``7d``, ``12h``); a user whose
    #: active strike points reach POINTS gets that step unless a step as high is already in force.
    disposal_ladder: tuple[str, ...] = (
        "2=warning",
        "4=restriction:7d",
        "6=suspension:1d",
        "10=suspension:30d",
        "20=closure",
    )
    #: (verify) Consecutive violating reviewed inputs that trigger a measure (0: off).
    disposal_consecutive_limit: int = 3
    #: (verify) Violations within one UTC day that trigger a measure (0: off).
    disposal_daily_limit: int = 5
    #: Least ladder step (a kind) an automatic trigger imposes; above it, one step higher each time.
    disposal_trigger_step: str = "suspension"
    #: What a restriction takes away when it names nothing (``generate``, ``publish``).
    disposal_restricted_functions: tuple[str, ...] = ("publish",)
    #: A TrueType font (``.ttf``/``.ttc``) with CJK glyphs for report PDFs; empty: search the usual
    #: system paths (WenQuanYi Micro Hei, Noto CJK).
    report_cjk_font: str = ""

    # --- governance (identity, consent, documents, generation records, retention) ---
    #: AES-256-GCM key of identity numbers and names at rest: base64 of 32 random bytes (secret).
    identity_encryption_key: str = dataclasses.field(default="", repr=False)
    #: HMAC-SHA256 key of the identity lookup hashes and SMS code hashes: base64, >= 32 bytes (secret).
    identity_hash_key: str = dataclasses.field(default="", repr=False)
    #: Accept 15-digit first-generation resident ID numbers (void since 2013) by converting them.
    identity_accept_legacy_resident_id: bool = False
    #: URL of the external identity verification service (empty: no automatic verification).
    identity_verifier_url: str = ""
    #: Bearer token of the identity verification service (secret).
    identity_verifier_token: str = dataclasses.field(default="", repr=False)
    #: Seconds the identity verification service and the SMS gateway may take.
    identity_service_timeout_seconds: float = 10.0
    #: URL of the SMS gateway (empty: the console sender, for development only).
    sms_gateway_url: str = ""
    #: Bearer token of the SMS gateway (secret).
    sms_gateway_token: str = dataclasses.field(default="", repr=False)
    #: Text of the SMS; ``{code}`` and ``{minutes}`` are filled in.
    sms_message_template: str = "您的验证码是{code}，{minutes}分钟内有效。"
    #: Seconds an SMS code stays valid.
    sms_code_ttl_seconds: int = 300
    #: Wrong codes accepted before a challenge is spent.
    sms_code_max_attempts: int = 5
    #: SMS codes sent to one number (or for one user) in an hour.
    sms_max_per_hour: int = 5
    #: The algorithm filing number (Art. 19), shown on every public page and response.
    filing_number: str = ""
    #: The link to the public filing information.
    filing_link: str = ""
    #: (verify) Days identity data is kept after the account is closed.
    retention_identity_days: int = 183
    #: Days SMS challenges (phone number, code hash) are kept.
    retention_sms_days: int = 30
    #: (verify) Days a consent record's personal reference is kept after it expired or was revoked.
    retention_consent_days: int = 1095
    #: Days generation records (the Measures Art. 9 log) keep the user reference; at least 183.
    retention_log_days: int = 183

    def signing_key_text(self) -> str:
        """The private key text, from the inline setting or the key file ('' when none)."""
        if self.signing_key:
            return self.signing_key
        if self.signing_key_file:
            try:
                return Path(self.signing_key_file).read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read signing key file {self.signing_key_file}: {exc}") from exc
        return ""

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{Path(self.data_dir).resolve() / 'synthguard.db'}"


_FIELDS: Final = {f.name: f for f in dataclasses.fields(Settings)}


_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


def _coerce(name: str, value: Any) -> Any:
    field_type = _FIELDS[name].type
    if field_type in ("bool", bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise ConfigError(f"setting {name} must be true or false, got {value!r}")
    if field_type in ("int", int, "float", float):
        number_type = int if field_type in ("int", int) else float
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"setting {name} must be a number, got {value!r}")
        try:
            return number_type(value)
        except ValueError as exc:
            raise ConfigError(f"setting {name} must be a number, got {value!r}") from exc
    if field_type in ("tuple[str, ...]", tuple[str, ...]):
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"setting {name} must be a list of strings")
    if not isinstance(value, str):
        raise ConfigError(f"setting {name} must be a string, got {type(value).__name__}")
    return value


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    section = data.get("synthguard", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [synthguard] must be a table")
    return section


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Resolve settings from defaults, the config file, the environment and ``overrides``."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    config_path = env.get(f"{ENV_PREFIX}CONFIG")
    if config_path:
        values.update(_read_file(Path(config_path)))
    elif Path("synthguard.toml").is_file():
        values.update(_read_file(Path("synthguard.toml")))
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"unknown settings in config file: {', '.join(unknown)}")
    for name in _FIELDS:
        env_value = env.get(ENV_PREFIX + name.upper())
        if env_value is not None:
            values[name] = env_value
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(unknown)}")
    settings = Settings(**{name: _coerce(name, value) for name, value in values.items()})
    if settings.signing_algorithm not in ("", "ed25519", "sm2"):
        raise ConfigError(f"signing_algorithm must be ed25519 or sm2, got {settings.signing_algorithm!r}")
    if settings.retention_log_days < 183:
        raise ConfigError(
            f"retention_log_days must be at least 183 (logs are kept 6 months), "
            f"got {settings.retention_log_days}"
        )
    return settings
