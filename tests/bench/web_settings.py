"""The production settings, with one trivial view added for the web benchmark's baseline."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "tests.bench.web_urls"
