"""A run's outputs, streamed from the work store: codings (Parquet and CSV), frequency
tables and ``rejected.csv``."""

from __future__ import annotations

import csv
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..files import atomic_write
from ..records import Codebook
from ..review import PersonCoding
from ..tables import csv_safe, write_csv_rows, write_table
from .decisions import output_columns, with_decisions
from .manifest import CODINGS_CSV, CODINGS_PARQUET, FREQUENCY_FILES, REJECTED_CSV
from .store import arrow_schema, read_blob

REJECTED_COLUMNS = ("file", "row", "outcome", "reason")
PARQUET_ROW_GROUP = 65_536


def _csv_columns(table) -> list[list[str]]:
    """A chunk's columns as the text cells :func:`pipeline.tables.write_table` would write."""
    cells = []
    for schema_field, column in zip(table.schema, table.columns):
        values = column.to_pylist()
        if schema_field.name == "needs_review":
            values = ["true" if v else "false" for v in values]
        elif schema_field.name.startswith("p_"):
            values = [repr(v) for v in values]
        cells.append(values)
    return cells


def _csv_safe_columns(names: list[str], cells: list[list[str]]) -> list[list[str]]:
    """Text columns made safe for spreadsheets (:func:`pipeline.tables.csv_safe`); numbers and flags as they are."""
    return [values if name.startswith("p_") or name == "needs_review" else [csv_safe(v) for v in values]
            for name, values in zip(names, cells)]


def write_outputs(run_dir: Path, db: sqlite3.Connection, manifest: dict, codebook: Codebook,
                  decisions: Mapping[str, PersonCoding] | None = None) -> dict:
    """Stream the committed chunks, in input order, to Parquet, CSV and the frequency tables,
    with reviewers' ``decisions`` (by quote id) in place of the model's codes where they apply.

    The CSV has the dialect of :func:`pipeline.tables.write_table` (a test holds them equal);
    it is written here column-wise because that is several times faster at a million rows.
    Parquet row groups hold ``PARQUET_ROW_GROUP`` rows whatever the chunk size, so the file
    is byte-identical for the same codings.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = output_columns(manifest["columns"], codebook)
    schema = arrow_schema(columns)
    tally = FrequencyTally(codebook)
    coded = decided = 0
    with atomic_write(run_dir / CODINGS_PARQUET, "wb") as parquet_handle, atomic_write(run_dir / CODINGS_CSV) as csv_handle:
        writer = csv.writer(csv_handle, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow([csv_safe(c) for c in columns])
        parquet = pq.ParquetWriter(_NamingErrors(parquet_handle, run_dir / CODINGS_PARQUET), schema, compression="zstd")
        pending: list = []
        pending_rows = 0
        for (blob,) in db.execute("SELECT codings FROM chunks ORDER BY chunk_no"):
            table, n_decided = with_decisions(read_blob(blob), decisions or {}, codebook)
            decided += n_decided
            cells = _csv_columns(table)
            safe = _csv_safe_columns(columns, cells)
            if any("\r" in v for values in safe for v in values):
                write_csv_rows(csv_handle, zip(*safe))
            else:
                writer.writerows(zip(*safe))
            tally.add_columns(*(cells[columns.index(c)] for c in ("program", "sector", "organization", "codes")))
            coded += table.num_rows
            pending.append(table)
            pending_rows += table.num_rows
            if pending_rows >= PARQUET_ROW_GROUP:
                merged = pa.concat_tables(pending)
                whole = pending_rows - pending_rows % PARQUET_ROW_GROUP
                parquet.write_table(merged.slice(0, whole), row_group_size=PARQUET_ROW_GROUP)
                pending, pending_rows = [merged.slice(whole)], pending_rows - whole
        if pending_rows:
            parquet.write_table(pa.concat_tables(pending), row_group_size=PARQUET_ROW_GROUP)
        parquet.close()
    for by in FREQUENCY_FILES:
        frequency_columns, frequency_rows = tally.rows(by)
        write_table(run_dir / FREQUENCY_FILES[by], frequency_rows, frequency_columns)
    problems = [dict(zip(REJECTED_COLUMNS, p)) for p in db.execute(
        "SELECT file, row, outcome, reason FROM problems ORDER BY chunk_no, rowid")]
    write_table(run_dir / REJECTED_CSV, problems, REJECTED_COLUMNS)
    reasons: dict[str, Counter] = {"rejected": Counter(), "skipped": Counter(), "noted": Counter()}
    for problem in problems:
        reasons[problem["outcome"]][problem["reason"]] += 1
    return {
        "coded": coded,
        "decided": decided,
        "skipped": sum(reasons["skipped"].values()),
        "rejected": sum(reasons["rejected"].values()),
        "noted": sum(reasons["noted"].values()),
        "skipped_reasons": dict(sorted(reasons["skipped"].items())),
        "rejected_reasons": dict(sorted(reasons["rejected"].items())),
    }


class _NamingErrors:
    """A file handle whose failed write names ``path`` (pyarrow passes the OSError through).
    After a failure (its own or another's) the file is abandoned and closed by ``atomic_write``
    and later writes are dropped, so pyarrow closing its writer when collected reports nothing."""

    def __init__(self, handle, path: Path):
        self.handle, self.path = handle, path
        self.failed = False

    def write(self, data) -> int:
        if self.failed or self.handle.closed:
            return len(data)
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.failed = True
            if exc.filename is None:
                exc.filename = str(self.path)
            raise

    def __getattr__(self, name: str):
        return getattr(self.handle, name)


class FrequencyTally:
    """The tables of :func:`pipeline.frequencies.frequencies` by program and by sector, counted
    chunk by chunk from the codes as written (a person's where they decided; method ``raw``; ``framecode frequencies`` on
    the run's codings corrects them for the coder's error).

    Same columns, rows, order and values as that function (a test holds them equal), in
    memory bounded by the distinct (program, sector, organization, codes) combinations
    instead of the number of quotes.
    """

    def __init__(self, codebook: Codebook):
        self.codebook = codebook
        self._combinations: Counter[tuple[str, str, str, str]] = Counter()

    def add_columns(self, programs: Sequence[str], sectors: Sequence[str], organizations: Sequence[str], codes: Sequence[str]) -> None:
        self._combinations.update(zip(programs, sectors, organizations, codes))

    def rows(self, by: str) -> tuple[list[str], list[dict]]:
        """(columns, rows) as ``frequencies(codings, codebook, by=(by,))`` gives them."""
        import numpy as np

        from ..frequencies import FREQUENCY_COLUMNS, UNKNOWN, sort_groups, wilson_interval

        theme_of = {c.id: c.theme for c in self.codebook.codes}
        quotes: Counter[str] = Counter()
        carrying: Counter[tuple[str, str, str]] = Counter()
        organizations: dict[str, set[str]] = {}
        organizations_with: dict[tuple[str, str, str], set[str]] = {}
        for (program, sector, organization, codes), count in self._combinations.items():
            group = (program if by == "program" else sector).strip() or UNKNOWN
            organization = organization.strip()
            code_ids = {c.strip() for c in codes.split(";") if c.strip()}
            carried = [("code", c) for c in code_ids] + [("theme", t) for t in {theme_of[c] for c in code_ids}]
            quotes[group] += count
            for level, item in carried:
                carrying[(group, level, item)] += count
            if organization:
                organizations.setdefault(group, set()).add(organization)
                for level, item in carried:
                    organizations_with.setdefault((group, level, item), set()).add(organization)
        names = {("code", c.id): (c.name, c.theme) for c in self.codebook.codes}
        names |= {("theme", t.id): (t.name, t.id) for t in self.codebook.themes}
        rows = []
        for group in sort_groups(quotes):
            for level, item in names:
                key = (group, level, item)
                rows.append({
                    by: group, "level": level, "id": item, "name": names[level, item][0], "theme": names[level, item][1],
                    "n_quotes": quotes[group], "n_with": carrying[key],
                    "n_organizations_with": len(organizations_with.get(key, ())),
                    "n_organizations": len(organizations.get(group, ())),
                })
        counts = np.array([r["n_with"] for r in rows], dtype=float)
        totals = np.array([r["n_quotes"] for r in rows], dtype=float)
        low, high = wilson_interval(counts, totals) if rows else ([], [])
        for row, k, n, lo, hi in zip(rows, counts, totals, low, high):
            row.update(share=float(k / n), ci_low=float(lo), ci_high=float(hi), method="raw", n_human=0,
                       raw_share=float(k / n), raw_ci_low=float(lo), raw_ci_high=float(hi))
        return [by, *FREQUENCY_COLUMNS], rows

