"""Render the run reports (``reports/*.ipynb`` at the project root) into
``runs/<run_id>/reports/<name>.html`` and refresh ``runs/index.html``.

Two paths from the same sources: the Quarto CLI when it is on PATH (``quarto render``
executes the notebook with ``-P`` parameters), otherwise Jupyter's own tools (papermill
executes, nbconvert writes the HTML). Either gives one self-contained HTML file: plotly.js
is inline (the reports display figures with the ``plotly_mimetype+notebook`` renderer), and
the nbconvert template here drops the CDN scripts (require.js, MathJax, Mermaid, widgets).

Reports are published: the last step of each page (a report, the index) shows every path of
the project root relative to it (``paths.scrub``), whatever a cell printed.
"""
from __future__ import annotations

import html
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..runtime import run_record
from ..runtime.atomic_files import write_text_atomic
from ..runtime.config import Profile, ProfileError, load_profile
from .paths import scrub

REPORTS = ("validation", "features", "sweep")
KERNEL_NAME = "mbolake"


# lab template without anything fetched from a CDN; code cells folded like Quarto's code-fold.
TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block input_group -%}
<details class="mbolake-code"><summary>code</summary>
{{ super() }}
</details>
{% endblock input_group %}
"""


class ReportError(ValueError):
    pass


@dataclass
class RenderedReport:
    name: str
    html: Path
    status: str  # ok | failed
    seconds: float
    engine: str  # nbconvert | quarto
    error: str = ""


def report_sources(profile: Profile) -> Path:
    """``reports/`` of the project root, else of the checkout mbolake is installed from."""
    own = Path(profile.root) / "reports"
    if (own / "validation.ipynb").exists():
        return own
    return Path(__file__).resolve().parents[3] / "reports"


def quarto_path() -> str | None:
    return shutil.which("quarto")


def report_names(name: str) -> tuple[str, ...]:
    if name == "all":
        return REPORTS
    if name not in REPORTS:
        raise ReportError(f"unknown report {name!r}; choose one of {', '.join(REPORTS)} or all")
    return (name,)


def report_parameters(source: Path, profile: Profile, run_id: str, extra: dict | None) -> dict:
    """The report's declared parameters only (an unknown one is refused, naming it)."""
    import papermill

    declared = set(papermill.inspect_notebook(str(source)))
    params = {"profile": profile.name, "run_id": run_id, **(extra or {})}
    unknown = sorted(set(params) - declared)
    if unknown:
        raise ReportError(f"report {source.stem}: unknown parameter {unknown[0]!r} (known: {', '.join(sorted(declared))})")
    return params


def to_html(executed: Path, target: Path) -> Path:
    """nbconvert's lab HTML, self-contained (see ``TEMPLATE``)."""
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", extra_loaders=[jinja2.DictLoader({"mbolake_report.html.j2": TEMPLATE})],
                            template_file="mbolake_report.html.j2", embed_images=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if c.cell_type != "raw"]  # the Quarto front matter is not content
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": target.stem}})
    target.write_text(body, encoding="utf-8")
    return target


def render_nbconvert(source: Path, out_dir: Path, params: dict, log_path: Path, profile: Profile) -> Path:
    from ..runtime import kernels
    from ..runtime.orchestrator import environment
    from ..runtime.spark import jvm_output_to

    executed = out_dir / f"{source.stem}.ipynb"
    with environment(MBOLAKE_SPARK_LOG=str(log_path)), jvm_output_to(log_path):
        try:
            kernels.execute_notebook(str(source), str(executed), params, KERNEL_NAME, str(out_dir),
                                     profile, progress_bar=False, log_output=True,
                                     stdout_file=sys.stdout, stderr_file=sys.stderr)
        finally:
            if executed.exists():  # a failed cell still leaves a page that shows the traceback
                to_html(executed, out_dir / f"{source.stem}.html")
    return out_dir / f"{source.stem}.html"


def render_quarto(source: Path, out_dir: Path, params: dict, log_path: Path) -> Path:
    """``quarto render`` on a copy beside the output (Quarto writes next to its input)."""
    work = out_dir / f"_quarto_{source.stem}.ipynb"
    shutil.copy(source, work)
    command = [quarto_path(), "render", str(work), "--execute", "--to", "html", "--output", f"{source.stem}.html"]
    for key, value in params.items():
        command += ["-P", f"{key}:{value}"]
    with open(log_path, "ab") as log:
        subprocess.run(command, cwd=out_dir, stdout=log, stderr=subprocess.STDOUT, check=True)
    work.unlink(missing_ok=True)
    return out_dir / f"{source.stem}.html"


def render_report(name: str, profile: Profile, run_id: str, parameters: dict | None = None,
                  engine: str | None = None) -> RenderedReport:
    """One report into ``runs/<run_id>/reports/<name>.html``; a failing report is recorded, not raised."""
    source = report_sources(profile) / f"{name}.ipynb"
    out_dir = Path(profile.runs_root) / run_id / "reports"
    (out_dir.parent / "logs").mkdir(parents=True, exist_ok=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir.parent / "logs" / f"report_{name}.log"
    params = report_parameters(source, profile, run_id, parameters)
    engine = engine or ("quarto" if quarto_path() else "nbconvert")
    t0 = time.perf_counter()
    try:
        if engine == "quarto":
            html_path = render_quarto(source, out_dir, params, log_path)
        else:
            html_path = render_nbconvert(source, out_dir, params, log_path, profile)
        result = RenderedReport(name, html_path, "ok", time.perf_counter() - t0, engine)
    except Exception as exc:
        from ..runtime.orchestrator import failure_location

        result = RenderedReport(name, out_dir / f"{name}.html", "failed", time.perf_counter() - t0, engine,
                                failure_location(exc))
    # a failed report too (its traceback names files), and the executed notebook published beside it
    for page in (result.html, out_dir / f"{name}.ipynb"):
        if page.exists():
            without_machine_paths(page, profile.root)
    record_report(profile, run_id, result)
    return result


def without_machine_paths(page: Path, root: str | Path) -> Path:
    """The page with the project root's paths relative to it (``paths.scrub``): the snapshot a
    cell printed, a tag, a ``file://`` artifact URI, a traceback."""
    text = page.read_text(encoding="utf-8")
    clean = scrub(text, root)
    if clean != text:
        page.write_text(clean, encoding="utf-8")
    return page


def record_report(profile: Profile, run_id: str, result: RenderedReport) -> None:
    run_dir = Path(profile.runs_root) / run_id
    record = run_record.read_run(run_dir) or {"run_id": run_id, "status": "unknown", "notebooks": []}
    record.setdefault("reports", {})[result.name] = {
        "html": f"reports/{result.html.name}" if result.html.exists() else None, "status": result.status,
        "seconds": round(result.seconds, 1), "engine": result.engine, "error": result.error}
    run_record.write_json(run_dir / "run.json", record)


def render_reports(names, profile: Profile, run_id: str, parameters: dict | None = None, log=print,
                   engine: str | None = None) -> list[RenderedReport]:
    results = []
    for name in names:
        result = render_report(name, profile, run_id, parameters, engine)
        results.append(result)
        where = result.error or str(result.html)
        log(f"  report {result.status:6s} {name:33s} {result.seconds:7.1f} s  {where}")
    write_index(Path(profile.runs_root), profile.root)
    return results


def shared_parameters(source: Path, run_parameters: dict) -> dict:
    """The run's parameters that the report declares too (``model_id``); the rest are the notebooks' own."""
    import papermill

    declared = set(papermill.inspect_notebook(str(source)))
    return {k: v for k, v in run_parameters.items() if k in declared and k not in ("profile", "run_id")}


def reports_after_run(run_parameters: dict):
    """The hook ``mbolake run`` / ``demo`` call after the notebooks: every report, with the run's
    parameters that the reports declare (e.g. ``model_id``)."""

    def after(profile: Profile, run_id: str) -> None:
        from ..runtime.orchestrator import console_line

        source = report_sources(profile)
        for name in REPORTS:
            shared = shared_parameters(source / f"{name}.ipynb", run_parameters)
            render_reports([name], profile, run_id, shared, log=console_line)
        console_line(f"reports: {Path(profile.runs_root) / run_id / 'reports'}/ ; all runs: "
                     f"{Path(profile.runs_root) / 'index.html'}")

    return after


def main_report(name: str, run_id: str, parameters: dict, profile_name: str | None) -> int:
    try:
        profile = load_profile(profile_name)
        names = report_names(name)
        for one in names:
            report_parameters(report_sources(profile) / f"{one}.ipynb", profile, run_id, parameters)
    except (ProfileError, ReportError) as exc:
        print(f"mbolake report: {exc}", file=sys.stderr)
        return 2
    if not (Path(profile.runs_root) / run_id).is_dir():
        print(f"mbolake report: no run {run_id!r} under {profile.runs_root}", file=sys.stderr)
        return 2
    results = render_reports(names, profile, run_id, parameters)
    print(f"index of all runs: {Path(profile.runs_root) / 'index.html'}")
    return 0 if all(r.status == "ok" for r in results) else 1


def write_index(runs_root: Path, root: str | Path | None = None) -> Path:
    """``runs/index.html``: every run with its status, notebooks and reports, newest first; with
    the project ``root``, its paths (in an error) shown relative to it."""
    rows = []
    runs = [d for d in Path(runs_root).iterdir() if d.is_dir() and (d / "run.json").exists()] if Path(
        runs_root).is_dir() else []
    for run_dir in sorted(runs, key=lambda d: d.name, reverse=True):
        record = run_record.read_run(run_dir) or {}
        status = record.get("status", "unknown")
        notebooks = record.get("notebooks", [])
        ok = sum(1 for n in notebooks if n.get("status") == "ok")
        failed = record.get("failed") or {}
        reports = " ".join(
            f'<a href="{html.escape(run_dir.name)}/{html.escape(r["html"])}" class="{r["status"]}">{html.escape(n)}</a>'
            for n, r in sorted(record.get("reports", {}).items()) if r.get("html"))
        rows.append(f'<tr class="{html.escape(status)}"><td>{html.escape(run_dir.name)}</td>'
                    f'<td class="status">{html.escape(status)}</td><td>{html.escape(str(record.get("started_at", "")))}</td>'
                    f"<td>{ok}/{len(record.get('planned', notebooks))}</td>"
                    f"<td>{html.escape(failed.get('notebook', ''))} {html.escape(failed.get('error', ''))}</td>"
                    f"<td>{reports}</td></tr>")
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>mbolake runs</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px}} tr.ok .status{{background:#c8f7c5}}
tr.failed .status{{background:#f7c5c5}} a.failed{{color:#b00}}</style></head>
<body><h1>mbolake runs</h1><table>
<tr><th>run</th><th>status</th><th>started (UTC)</th><th>notebooks ok</th><th>failed at</th><th>reports</th></tr>
{''.join(rows)}
</table></body></html>
"""
    return write_text_atomic(Path(runs_root) / "index.html", scrub(page, root) if root else page)
