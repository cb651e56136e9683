"""The server's settings, from environment variables, so that the app and the CLI read the same ones.

Local mode (the default) needs none of them. A class server sets CNN_LAB_SHARED=1 and usually an admin password;
README.md's "Run it for a class" lists them all.
"""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    shared: bool = False  # many people on one server: each job has an owner, folders are fenced in
    login: bool = False  # identify people with st.login (an OIDC provider in .streamlit/secrets.toml)
    admins: tuple[str, ...] = ()  # st.login e-mails with admin rights
    admin_password: str = ""  # without st.login: the password that makes a person an admin
    max_running: int = 1  # jobs on the device at once
    queued_per_person: int = 3  # jobs one person may have waiting (shared mode; one running per person)
    time_limit_minutes: float = 30.0  # a job running longer is stopped (0 = no limit)
    pause_timeout_minutes: float = 10.0  # a job paused longer gives the device back: it is stopped (0 = never)
    disk_budget_gb: float = 5.0  # uploads, extracted archives and caches together; the oldest go first
    decode_budget_gb: float = 6.0  # one job's whole peak memory, estimated before decoding (local mode: its arrays)
    upload_max_images: int = 10_000  # images in one person's zip or folder (shared mode)
    upload_max_pixels_per_byte: float = 100.0  # pixels decoding would make per byte uploaded (shared mode)
    onnx_max_mb: float = 100.0  # an imported ONNX model's file, and its weights as the file declares them
    archive_max_ratio: float = 100.0  # bytes an archive unpacks to per byte of archive (photos barely compress)
    archive_max_files: int = 100_000  # members in one archive (CIFAR-10's JPEG copy has 60,000 photos)
    person_disk_mb: float = 1000.0  # one person's runs, imports and uploads on disk (shared mode)
    max_people: int = 300  # names a class server lets people claim (a class of 100, with room for typos)
    admin_tries_per_minute: int = 5  # wrong admin passwords the server hears a minute, from everyone together
    ray_address: str = ""  # run jobs on a Ray cluster: "auto" (started with `ray start`), "local", or host:port


def _number(name: str, default: float) -> float:
    text = os.environ.get(name, "").strip()
    try:
        return float(text) if text else default
    except ValueError:
        raise ValueError(f"The setting {name}={text!r} is not a number.") from None


def load_settings() -> Settings:
    """The settings in force now (read on each call: cheap, and a test can change them)."""
    env = os.environ.get
    return Settings(
        shared=env("CNN_LAB_SHARED", "") not in ("", "0", "false", "no"),
        login=env("CNN_LAB_LOGIN", "") not in ("", "0", "false", "no"),
        admins=tuple(a.strip() for a in env("CNN_LAB_ADMINS", "").split(",") if a.strip()),
        admin_password=env("CNN_LAB_ADMIN_PASSWORD", ""),
        max_running=int(_number("CNN_LAB_MAX_JOBS", 1)),
        queued_per_person=int(_number("CNN_LAB_QUEUED_PER_PERSON", 3)),
        time_limit_minutes=_number("CNN_LAB_TIME_LIMIT_MINUTES", 30.0),
        pause_timeout_minutes=_number("CNN_LAB_PAUSE_TIMEOUT_MINUTES", 10.0),
        disk_budget_gb=_number("CNN_LAB_DISK_BUDGET_GB", 5.0),
        decode_budget_gb=_number("CNN_LAB_DECODE_BUDGET_GB", 6.0),
        upload_max_images=int(_number("CNN_LAB_UPLOAD_MAX_IMAGES", 10_000)),
        upload_max_pixels_per_byte=_number("CNN_LAB_UPLOAD_MAX_PIXELS_PER_BYTE", 100.0),
        onnx_max_mb=_number("CNN_LAB_ONNX_MAX_MB", 100.0),
        archive_max_ratio=_number("CNN_LAB_ARCHIVE_MAX_RATIO", 100.0),
        archive_max_files=int(_number("CNN_LAB_ARCHIVE_MAX_FILES", 100_000)),
        person_disk_mb=_number("CNN_LAB_PERSON_DISK_MB", 1000.0),
        max_people=int(_number("CNN_LAB_MAX_PEOPLE", 300)),
        admin_tries_per_minute=int(_number("CNN_LAB_ADMIN_TRIES_PER_MINUTE", 5)),
        ray_address=env("CNN_LAB_RAY", "").strip(),
    )
