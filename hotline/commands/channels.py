"""`hotline channels list|webhook`: which chat channels are on, and registering our webhook with a
platform that is set up by API (Telegram's setWebhook with the secret token)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    @cli.group("channels", help="Chat channels (Telegram, Messenger, LINE, SMS gateway).")
    def channels_group() -> None:
        pass

    @channels_group.command("list", help="Each chat channel, whether it is on, and its webhook URL.")
    def list_channels() -> None:
        from hotline import channels
        from hotline.cli import settings_or_exit
        from hotline.settings import CHANNEL_SETTINGS

        s = settings_or_exit()
        channels.load_adapters()
        for name, spec in CHANNEL_SETTINGS.items():
            state = "on " if s.channel(name) is not None else "off"
            hint = f"{s.public_base_url}/channels/{name}" if s.channel(name) is not None else \
                f"set {', '.join(spec.required)}"
            ready = "" if name in channels.ADAPTERS else " (no adapter in this version)"
            click.echo(f"{name:<10} {state} {hint}{ready}")

    @channels_group.command("webhook", help="Register PUBLIC_BASE_URL/channels/<channel> with the platform: Telegram "
                                            "(setWebhook with TELEGRAM_WEBHOOK_SECRET as its secret_token), LINE "
                                            "(the channel's webhook URL, then LINE's own test request), the SMS "
                                            "gateway (one webhook per event it reports).")
    @click.argument("channel", type=click.Choice(["telegram", "line", "smsgate"]))
    def webhook(channel: str) -> None:
        from hotline import channels
        from hotline.cli import friendly_errors, settings_or_exit
        from hotline.telephony.transport import SendError

        s = settings_or_exit()
        adapter = channels.adapter(s, channel)
        if adapter is None:
            from hotline.settings import CHANNEL_SETTINGS

            raise click.ClickException(f"the {channel} channel is off: set "
                                       f"{', '.join(CHANNEL_SETTINGS[channel].required)} first")
        url = f"{s.public_base_url}/channels/{channel}"
        with friendly_errors():
            try:
                said = adapter.set_webhook(url)  # type: ignore[attr-defined]
            except SendError as exc:
                raise click.ClickException(str(exc)) from None
        click.echo(said or f"Telegram now posts updates to {url}, with the secret token")
