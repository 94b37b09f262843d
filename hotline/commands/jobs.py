"""`hotline jobs list [--failed]` and `hotline jobs retry ID`: background jobs as operators see them."""

from __future__ import annotations

import click


@click.group("jobs", help="Background jobs (the outbox): what is waiting or failed, and a retry by hand.")
def jobs_group() -> None:
    pass


@jobs_group.command("list", help="Jobs not done yet, newest first (with --failed: failed ones only).")
@click.option("--failed", is_flag=True, help="Only jobs that failed for good, with the reason.")
@click.option("--limit", default=50, show_default=True)
def list_command(failed: bool, limit: int) -> None:
    from hotline.background.admin import list_jobs
    from hotline.background.queues import rq_status
    from hotline.cli import settings_or_exit
    from hotline.resources import Resources

    res = Resources(settings_or_exit())
    try:
        with res.db.Session() as s:
            rows = list_jobs(s, failed=failed, limit=limit)
            if not rows:
                click.echo("no failed jobs" if failed else "no jobs waiting, running or failed")
            for job in rows:
                try:
                    in_rq = rq_status(res.redis(), job.id) or "-"
                except Exception:  # noqa: BLE001 - the database view is what matters; Redis may be away
                    in_rq = "redis down"
                case = f" case={job.case_id}" if job.case_id else ""
                click.echo(f"{job.id:>6}  {job.status:<8} {job.kind:<18} queue={job.queue:<7} "
                           f"attempts={job.attempts} rq={in_rq}{case}  {job.created_at:%Y-%m-%d %H:%M}Z")
                if job.last_error:
                    click.echo(f"        {job.last_error}")
    finally:
        res.close()


@jobs_group.command("retry", help="Run a failed job again, with a fresh set of attempts.")
@click.argument("job_id", type=int)
def retry_command(job_id: int) -> None:
    from hotline.background.admin import RetryQueued, RetryRefused, retry_job
    from hotline.cli import settings_or_exit
    from hotline.resources import Resources

    res = Resources(settings_or_exit())
    try:
        job = retry_job(res, job_id)
    except RetryRefused as exc:
        raise click.ClickException(str(exc)) from None
    except RetryQueued as exc:
        click.echo(str(exc))
        return
    finally:
        res.close()
    click.echo(f"job {job.id} ({job.kind}) queued again on {job.queue}")


def register(cli: click.Group) -> None:
    cli.add_command(jobs_group)
