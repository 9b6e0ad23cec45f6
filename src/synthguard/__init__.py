"""synthguard: GB 45438-2025 labels, review and records for deep synthesis services.

The curated public API; a test keeps ``__all__`` complete and sorted.

>>> import synthguard
>>> synthguard.AigcLabel(Label="1", ContentProducer="001191110108DEMQ00018H10001",
...                      ProduceID="00000000000000AB").to_json()[:30]
'{"Label":"1","ContentProducer"'
"""

from synthguard.aigc import AigcLabel, LabelValue, ProduceID, ProviderCode
from synthguard.config import Settings, load_settings
from synthguard.errors import (
    ConfigError,
    CorruptMediaError,
    InvalidLabelError,
    InvalidProviderCodeError,
    LabelError,
    MediaError,
    MediaLimitError,
    SignatureError,
    SynthguardError,
    UnsupportedFormatError,
    UsageError,
    WriteVerificationError,
)
from synthguard.labels.base import LabelKind
from synthguard.labels.detect import Detection, detect_file
from synthguard.labels.pipeline import LabelResult, label_file, relabel_file
from synthguard.media import Container, Modality, identify, identify_path

__version__ = "0.1.0"

__all__ = [
    "AigcLabel",
    "ConfigError",
    "Container",
    "CorruptMediaError",
    "Detection",
    "InvalidLabelError",
    "InvalidProviderCodeError",
    "LabelError",
    "LabelKind",
    "LabelResult",
    "LabelValue",
    "MediaError",
    "MediaLimitError",
    "Modality",
    "ProduceID",
    "ProviderCode",
    "Settings",
    "SignatureError",
    "SynthguardError",
    "UnsupportedFormatError",
    "UsageError",
    "WriteVerificationError",
    "detect_file",
    "identify",
    "identify_path",
    "label_file",
    "load_settings",
    "relabel_file",
]
