"""Sections, checks and the JSON / Markdown record of a device check."""
from __future__ import annotations

import json
import logging
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from dfdnet.utils.benchmarking import markdown_table
from dfdnet.utils.files import atomic_path

logger = logging.getLogger(__name__)


@dataclass
class Section:
    """One part of the check: its figures (``data``), its checks, and an error if it stopped."""
    name: str
    checks: list = field(default_factory=list)
    data: dict = field(default_factory=dict)
    rows: list = field(default_factory=list)   # table rows for the Markdown (speed figures)
    error: str | None = None
    skipped: str | None = None                 # why the section did not run (None: it ran)
    seconds: float = 0.0

    def check(self, name: str, value, limit, ok: bool, unit: str = '') -> bool:
        """Record one comparison: ``value`` against ``limit`` (both in ``unit``)."""
        self.checks.append({'name': name, 'value': value, 'limit': limit, 'ok': bool(ok), 'unit': unit})
        if not ok:
            logger.error('%s: %s = %s%s, limit %s%s', self.name, name, value, unit, limit, unit)
        return bool(ok)

    @property
    def ok(self) -> bool | None:
        """True when every check passed and nothing raised; None when skipped."""
        if self.skipped is not None:
            return None
        return self.error is None and all(c['ok'] for c in self.checks)

    def failures(self) -> list:
        """One line per failed check (or the error), naming the mismatch."""
        lines = [f"{self.name}: {c['name']} = {_fmt(c['value'])}{c['unit']}, limit {_fmt(c['limit'])}{c['unit']}"
                 for c in self.checks if not c['ok']]
        if self.error is not None:
            lines.append(f'{self.name}: {self.error}')
        return lines

    def to_dict(self) -> dict:
        return {'ok': self.ok, 'skipped': self.skipped, 'error': self.error, 'seconds': round(self.seconds, 3),
                'checks': self.checks, 'data': self.data, 'rows': self.rows}


def run_section(name: str, fn, *args, **kwargs) -> Section:
    """Run ``fn(section, *args, **kwargs)``; an exception becomes the section's error, not a crash."""
    section = Section(name)
    start = time.perf_counter()
    logger.info('section %s ...', name)
    try:
        fn(section, *args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every failure is recorded and the other sections still run
        section.error = f'{type(exc).__name__}: {exc}'
        section.data['traceback'] = traceback.format_exc()[-4000:]
        logger.error('section %s failed: %s', name, section.error)
    section.seconds = time.perf_counter() - start
    state = 'skipped' if section.skipped else ('pass' if section.ok else 'FAIL')
    logger.info('section %s: %s in %.1f s', name, state, section.seconds)
    return section


def summary_markdown(report: dict) -> str:
    """A short Markdown page: one line per section, then each section's table of figures."""
    lines = [f"# Device check: {'PASS' if report['ok'] else 'FAIL'}", '',
             f"{report['device']} ({report['environment_line']}), {report['seconds']:.0f} s, "
             f"sizes: {report['sizes_name']}",
             '', '| section | result | seconds | failed checks |', '|---|---|---|---|']
    for name, sec in report['sections'].items():
        result = 'skipped: ' + sec['skipped'] if sec['skipped'] else ('pass' if sec['ok'] else 'FAIL')
        failed = '; '.join(c['name'] for c in sec['checks'] if not c['ok']) + (sec['error'] or '')
        lines.append(f"| {name} | {result} | {sec['seconds']:.1f} | {failed.replace('|', '/')[:200]} |")
    for name, sec in report['sections'].items():
        if sec['rows']:
            columns = list(dict.fromkeys(k for row in sec['rows'] for k in row))
            lines += ['', f'## {name}', '', markdown_table(sec['rows'], columns)]
    return '\n'.join(lines) + '\n'


def write_report(folder: Path, report: dict) -> tuple:
    """Write ``gpu_check.json`` and ``gpu_check.md`` into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / 'gpu_check.json', folder / 'gpu_check.md'
    with atomic_path(paths[0]) as tmp:
        tmp.write_text(json.dumps(report, indent=2, default=str), encoding='utf-8')
    with atomic_path(paths[1]) as tmp:
        tmp.write_text(summary_markdown(report), encoding='utf-8')
    return paths


def _fmt(value) -> str:
    return f'{value:.4g}' if isinstance(value, float) else str(value)
