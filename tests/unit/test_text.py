"""engine/text.py: the one sanitizer and the one markdown escape, on hostile input."""
import pytest

from engine.text import MARKDOWN_LIMIT, markdown, one_line
from tests.unit.markdown import table_cells

ONE_LINE = [
    ("plain", "registry.example.com/app:1", "registry.example.com/app:1"),
    ("unicode kept", "hôte-é.example", "hôte-é.example"),
    ("newline", "line\nbreak", "line break"),
    ("crlf and tab", "a\r\n\tb", "a   b"),
    ("unicode line separators", "a\u2028b\u2029c\x85d", "a b c d"),
    ("nul and bell", "a\x00b\x07", "a?b?"),
    ("ansi colour", "\x1b[31mred\x1b[0m", "?[31mred?[0m"),
    ("ansi title sequence", "\x1b]0;owned\x07", "?]0;owned?"),
    ("delete and c1", "a\x7fb\x9bc", "a?b?c"),
    ("bidi override", "\u202eevil", "?evil"),
    ("zero width", "a\u200bb\ufeff", "a?b?"),
    ("empty", "", ""),
]


@pytest.mark.parametrize("raw, expected", [case[1:] for case in ONE_LINE], ids=[case[0] for case in ONE_LINE])
def test_one_line_is_printable_and_keeps_what_is(raw, expected):
    assert one_line(raw) == expected


ASCII = [
    ("accents", "hôte-é", "h?te-?"),
    ("newline and nul", "a\n\x00b", "a ?b"),
    ("emoji", "app🚀", "app?"),
    ("printable ascii untouched", " !~azAZ09", " !~azAZ09"),
]


@pytest.mark.parametrize("raw, expected", [case[1:] for case in ASCII], ids=[case[0] for case in ASCII])
def test_ascii_only_leaves_printable_ascii_alone(raw, expected):
    assert one_line(raw, ascii_only=True) == expected


LIMITS = [
    ("short enough", "abc", 3, False, "abc"),
    ("cut with an ellipsis", "abcdef", 4, False, "abc…"),
    ("ascii ellipsis", "abcdef", 5, True, "ab..."),
    ("counted after cleaning", "a\x1bbcdef", 4, False, "a?b…"),
    ("long", "x" * 100_000, 160, False, "x" * 159 + "…"),
]


@pytest.mark.parametrize("raw, limit, ascii_only, expected", [case[1:] for case in LIMITS],
                         ids=[case[0] for case in LIMITS])
def test_one_line_cuts_to_its_limit(raw, limit, ascii_only, expected):
    shown = one_line(raw, limit, ascii_only=ascii_only)
    assert shown == expected and len(shown) <= limit


MARKDOWN = [
    ("plain", "nginx:1.25", "nginx:1.25"),
    ("pipe cannot open a cell", "a | b", "a \\| b"),
    ("escaped pipe stays escaped", "a \\| b", "a \\\\\\| b"),
    ("script tag", "<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("entity", "&lt;", "&amp;lt;"),
    ("backticks", "`code`", "'code'"),
    ("link", "[x](javascript:alert(1))", "\\[x\\](javascript:alert(1))"),
    ("image", "![x](http://e.example/x.png)", "!\\[x\\](http://e.example/x.png)"),
    ("emphasis", "**bold** _it_", "\\*\\*bold\\*\\* \\_it\\_"),
    ("heading", "# title", "\\# title"),
    ("newline cannot end a row", "a\n| x |", "a \\| x \\|"),
    ("ansi", "\x1b[31m", "?\\[31m"),
]


@pytest.mark.parametrize("raw, expected", [case[1:] for case in MARKDOWN], ids=[case[0] for case in MARKDOWN])
def test_markdown_escape(raw, expected):
    assert markdown(raw) == expected


@pytest.mark.parametrize("raw", [case[1] for case in MARKDOWN] + [case[1] for case in ONE_LINE])
def test_markdown_keeps_a_table_row_to_its_cells(raw):
    row = f"| {markdown(raw)} | {markdown(raw)} |"
    assert table_cells(row) == 2 and "\n" not in row


def test_markdown_is_cut_before_escaping_so_an_escape_is_never_split():
    shown = markdown("|" * 1000)
    assert shown == "\\|" * (MARKDOWN_LIMIT - 1) + "…"
    assert table_cells(f"| {shown} |") == 1
