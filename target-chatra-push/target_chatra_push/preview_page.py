"""The preview page of a dry run, or the report page of a real run: one self-contained HTML file.

The page is rendered by Jinja2 with autoescape on; the rows travel as JSON in a
`<script type="application/json">` element (see page_rows) and the page's own script builds
every element from them with `textContent`, never as markup. A Content-Security-Policy allows
only the page's own script and style, by their SHA-256 hashes: nothing else runs, no inline
handler, no `javascript:` URL, and nothing is fetched. Without JavaScript, a `<noscript>`
table, escaped by Jinja2, lists the same rows. The file holds message texts (personal
data), so it is created readable by the owner only.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import typing as t
from importlib import resources

import jinja2
from markupsafe import Markup

from target_chatra_push.page_rows import PageRows, actions, delivered_action, script_json
from target_chatra_push.summary import Outcome

if t.TYPE_CHECKING:
    import logging
    from pathlib import Path

    from target_chatra_push.policy import DeliveryOptions

_TEMPLATES = resources.files("target_chatra_push") / "templates"
PREVIEW_PAGE_NAME = "preview.html"
# Rows with these actions are dead-lettered (never sent), shown with their reason.
DEAD_LETTERED = (Outcome.INVALID.value, Outcome.REJECTED.value)


def page_path(options: DeliveryOptions) -> Path | None:
    """Where this run writes its page: the preview of a dry run, else the report if set."""
    if options.dry_run:
        return options.preview_html_path or options.preview_path.with_name(PREVIEW_PAGE_NAME)
    return options.report_html_path


def _sha256(source: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(source.encode()).digest()).decode()


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("target_chatra_push", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


class MessagePage:
    """Collects a run's rows and writes them as one page at the end."""

    def __init__(self, path: Path, *, dry_run: bool) -> None:
        self.path = path
        self.dry_run = dry_run
        self.rows = PageRows(path.parent)

    def write(self, logger: logging.Logger, stopped: str | None = None) -> None:
        """Write the page and drop the kept rows; a page that cannot be written is a warning.

        The ledger, the summary and the JSONL files already hold every outcome, so a full disk
        or a folder without write access costs only the page.
        """
        what = "Preview page" if self.dry_run else "Report page"
        try:
            if self.rows.failure is not None:
                logger.warning("%s not written to %s: %s", what, self.path, self.rows.failure)
                return
            self._write(stopped)
        except OSError as exc:
            logger.warning("%s not written to %s: %s", what, self.path, exc.strerror or exc)
        else:
            logger.info("%s written to %s", what, self.path)
        finally:
            self.rows.close()

    def _write(self, stopped: str | None) -> None:
        script = (_TEMPLATES / "page.js").read_text(encoding="utf-8")
        style = (_TEMPLATES / "page.css").read_text(encoding="utf-8")
        names = actions(dry_run=self.dry_run)
        settings = {
            "delivered": delivered_action(dry_run=self.dry_run),
            "deadLettered": DEAD_LETTERED,
        }
        counts = self.rows.counts
        page = _environment().get_template("page.html.j2")
        chunks = page.generate(
            title="Preview: nothing was sent" if self.dry_run else "Run report",
            dry_run=self.dry_run,
            generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            stopped=stopped,
            actions=names,
            streams=[(name, counts[name]) for name in sorted(counts)],
            totals={name: sum(c.get(name, 0) for c in counts.values()) for name in names},
            kept=self.rows.kept,
            left_out=self.rows.left_out,
            script=Markup(script),  # noqa: S704 - the package's own file
            style=Markup(style),  # noqa: S704 - the package's own file
            policy=f"default-src 'none'; script-src '{_sha256(script)}'; "
            f"style-src '{_sha256(style)}'; base-uri 'none'; form-action 'none'",
            settings=Markup(script_json(settings)),  # noqa: S704 - escaped for <script>
            rows=(Markup(chunk) for chunk in self.rows.script_lines()),  # noqa: S704 - as above
            table_rows=self.rows.table_rows(),
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            # A lone surrogate in a stream name must not cost the page: it becomes U+FFFD.
            with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as out:
                out.writelines(chunks)
            temporary.replace(self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
