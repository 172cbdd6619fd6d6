"""Market data page: import a candle CSV (admins) or download from a venue, as Celery jobs with live progress."""

from __future__ import annotations

from datetime import UTC, datetime, time

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import DateField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Regexp, ValidationError

from core.candles import jobs
from core.candles.store import coverage
from core.exchanges.spot.registry import VENUES
from core.infra.config import TIMEFRAMES
from core.infra.db import get_engine
from webapp.extensions import csrf

bp = Blueprint("marketdata", __name__, url_prefix="/marketdata")
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
SYMBOL = Regexp(r"^[A-Za-z0-9]{2,32}$", message="letters and digits only, like BTCUSDT")
VENUE_CHOICES = sorted(VENUES)
TF_CHOICES = list(TIMEFRAMES)


class ImportForm(FlaskForm):
    file = FileField("CSV file", validators=[FileRequired("choose a CSV file")])
    venue = SelectField("Venue", choices=VENUE_CHOICES, default="binance")
    symbol = StringField("Symbol", validators=[DataRequired(), Length(max=32), SYMBOL])
    timeframe = SelectField("Timeframe", choices=TF_CHOICES, default="1m")


class DownloadForm(FlaskForm):
    venue = SelectField("Venue", choices=VENUE_CHOICES, default="sim")
    symbol = StringField("Symbol", validators=[DataRequired(), Length(max=32), SYMBOL])
    timeframe = SelectField("Timeframe", choices=TF_CHOICES, default="1h")
    start = DateField("From (UTC)", validators=[DataRequired()])
    end = DateField("To (UTC, inclusive)", validators=[DataRequired()])

    def validate_end(self, field):
        if self.start.data and field.data and field.data < self.start.data:
            raise ValidationError("must not be before the start")


def _page(import_form: ImportForm, download_form: DownloadForm, status: int = 200):
    with get_engine().connect() as conn:
        stored = coverage(conn)
    for row in stored:
        row["first_utc"], row["last_utc"] = _utc(row["first"]), _utc(row["last"])
    listing = [jobs.job_status(current_user.id, j["id"]) for j in jobs.user_jobs(current_user.id)]
    return render_template(
        "marketdata/index.html",
        import_form=import_form,
        download_form=download_form,
        coverage=stored,
        jobs=[j for j in listing if j],
    ), status


def _utc(ms: int | None) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M") if ms is not None else "–"


@bp.get("/")
@login_required
def index():
    return _page(ImportForm(formdata=None), DownloadForm(formdata=None))


@bp.post("/import")
@csrf.exempt  # from the app-wide check only, which would read the body under the 1 MB limit: ImportForm checks it
@login_required
def start_import():
    if not current_user.is_admin:
        abort(403)  # the candle store is shared by every trader: only an admin writes files into it
    request.max_content_length = MAX_UPLOAD_BYTES  # candle files are larger than the app-wide limit
    form = ImportForm()
    if not form.validate_on_submit():
        return _page(form, DownloadForm(formdata=None), 400)
    path = jobs.new_upload_path()
    form.file.data.save(path)
    filename = (form.file.data.filename or "upload.csv")[:100]
    try:
        jobs.start_import(
            current_user.id,
            path,
            venue=form.venue.data,
            symbol=form.symbol.data.upper(),
            timeframe=form.timeframe.data,
            filename=filename,
        )
    except jobs.JobNotQueued as exc:
        path.unlink(missing_ok=True)
        flash(str(exc), "error")
        return _page(form, DownloadForm(formdata=None), 503)
    flash(f"Import of {filename} started.", "success")
    return redirect(url_for("marketdata.index"))


@bp.post("/download")
@login_required
def start_download():
    form = DownloadForm()
    if not form.validate_on_submit():
        return _page(ImportForm(formdata=None), form, 400)
    start_ms = int(datetime.combine(form.start.data, time(0, 0), UTC).timestamp() * 1000)
    end_ms = int(datetime.combine(form.end.data, time(23, 59), UTC).timestamp() * 1000)
    try:
        jobs.start_download(
            current_user.id,
            venue=form.venue.data,
            symbol=form.symbol.data.upper(),
            timeframe=form.timeframe.data,
            start_ms=start_ms,
            end_ms=end_ms,
        )
    except jobs.JobNotQueued as exc:
        flash(str(exc), "error")
        return _page(ImportForm(formdata=None), form, 503)
    flash(f"Download of {form.symbol.data.upper()} {form.timeframe.data} started.", "success")
    return redirect(url_for("marketdata.index"))


@bp.get("/jobs/<job_id>")
@login_required
def job(job_id: str):
    status = jobs.job_status(current_user.id, job_id)
    if status is None:
        abort(404)
    return render_template("marketdata/_job.html", job=status)
