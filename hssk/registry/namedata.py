"""The Vietnamese name frequency lists (data/, from duyet/vietnamese-namedb, MIT): one copy,
read by the matcher's vocabulary and by the synthetic population."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

NAME_FILES = (
    "uit_family_name_freq.csv",
    "uit_middle_name_freq.csv",
    "uit_given_name_freq.csv",
    "duyet_boy_given_names.txt",
    "duyet_girl_given_names.txt",
)


def name_data_dir() -> Path:
    """The folder holding the name lists and their licence."""
    return Path(str(resources.files("hssk.registry").joinpath("data")))


def read_name_file(name: str) -> str:
    """The text of one name list (one of NAME_FILES)."""
    if name not in NAME_FILES:
        raise ValueError(f"unknown name list {name!r}; one of {', '.join(NAME_FILES)}")
    return (name_data_dir() / name).read_text("utf-8")
