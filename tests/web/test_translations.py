"""The shipped catalogs: every message of the code and templates translated in every language,
with the same placeholders, and compiled by the install from the current .po files."""

import os

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from aiohttpdemo_polls import settings
from aiohttpdemo_polls.web import i18n

ROOT = settings.PROJECT_ROOT
TRANSLATIONS = ROOT / "translations"
SKIPPED_DIRS = {"node_modules", "build", "dist", "screenshots", "bench-results"}


def keep_directory(path: str) -> bool:
    name = os.path.basename(path)
    return not name.startswith((".", "_")) and name not in SKIPPED_DIRS


@pytest.fixture(scope="module")
def extracted() -> dict:
    """Every message id in the code and templates, as babel.cfg tells `pybabel extract` to find them."""
    with (ROOT / "babel.cfg").open() as config:
        method_map, options_map = parse_mapping_cfg(config)
    found = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        ROOT, method_map, options_map, directory_filter=keep_directory
    ):
        found.setdefault(
            message if isinstance(message, str) else message[0], (message, f"{filename}:{lineno}")
        )
    return found


def strings(message) -> tuple | None:
    """A catalog entry's translation(s) as a tuple: read_mo gives plurals as lists."""
    if message is None:
        return None
    return tuple(message.string) if isinstance(message.string, (list, tuple)) else (message.string,)


def catalog(language: str):
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=language)


def test_extraction_finds_the_messages_of_python_templates_and_scripts_texts(extracted):
    # One from each place: a form rule, an error page, a template, a script's words, a plural.
    for message in [
        "Write a question.",
        "There is no such page. The poll may not exist or may not be published yet.",
        "Latest polls",
        "Not live: reconnecting… (numbers may be out of date)",
        "vote",
    ]:
        assert message in extracted
    assert extracted["vote"][0] == ("vote", "votes")
    assert len(extracted) > 100


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_every_message_is_translated_in_every_catalog(extracted, language):
    shipped = catalog(language)
    problems = []
    for key, (message, where) in sorted(extracted.items()):
        entry = shipped.get(key)
        if entry is None:
            problems.append(f"missing: {key!r} ({where})")
        elif entry.fuzzy:
            problems.append(f"fuzzy: {key!r} ({where})")
        elif not all(strings(entry)):
            problems.append(f"empty: {key!r} ({where})")
        elif not isinstance(message, str) and not entry.pluralizable:
            problems.append(f"not plural: {key!r} ({where})")
    assert not problems, f"{language}: run pybabel extract/update (translations/README.md):\n" + "\n".join(
        problems
    )


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_translations_keep_the_placeholders_of_their_message(language):
    errors = [(message.id, error) for message, found in catalog(language).check() for error in found]
    assert not errors


@pytest.mark.parametrize("language", i18n.LANGUAGES)
def test_compiled_catalog_is_built_from_the_current_po_file(language):
    source = catalog(language)
    mo_path = TRANSLATIONS / language / "LC_MESSAGES" / "messages.mo"
    assert mo_path.is_file(), "`pip install -e .` compiles the catalogs"
    with mo_path.open("rb") as mo:
        compiled = read_mo(mo)
    stale = [m.id for m in source if m.id and strings(compiled.get(m.id)) != strings(m)]
    assert not stale, "the .mo is older than the .po: `pip install -e .` compiles it again"
