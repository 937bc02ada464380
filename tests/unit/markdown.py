"""Reading markdown tables back, for tests of the renderers."""


def table_cells(row: str) -> int:
    """Cells in a markdown table row: pipes not escaped by an odd run of backslashes."""
    pipes, backslashes = 0, 0
    for ch in row:
        if ch == "|" and backslashes % 2 == 0:
            pipes += 1
        backslashes = backslashes + 1 if ch == "\\" else 0
    return pipes - 1
