"""E-mail through SMTP (smtplib): a notice to the configured recipients.

Options: host, port (25), sender, to (list), username, password_env, starttls (false),
ssl (false), timeout. Parameters: subject, body, optional to (adds recipients).
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, ClassVar

from playbooks.adapters.base import Action, ActionResult


class SmtpEmail(Action):
    type: ClassVar[str] = "smtp"
    required_options: ClassVar[tuple[str, ...]] = ("host", "sender", "to")
    required_params: ClassVar[tuple[str, ...]] = ("subject", "body")

    def message(self, params: Mapping[str, Any]) -> EmailMessage:
        self.check_params(params)
        to = list(self.options["to"]) + [str(x) for x in params.get("to") or []]
        msg = EmailMessage()
        msg["From"] = str(self.options["sender"])
        msg["To"] = ", ".join(to)
        msg["Subject"] = str(params["subject"])
        msg["Date"] = formatdate(localtime=False, usegmt=True)
        msg["Message-ID"] = make_msgid(domain="socmon")
        msg.set_content(str(params["body"]))
        return msg

    def run(self, params: Mapping[str, Any], dry_run: bool = True) -> ActionResult:
        msg = self.message(params)
        port = int(self.options.get("port", 465 if self.options.get("ssl") else 25))
        request = {
            "method": "SMTP",
            "server": f"{self.options['host']}:{port}",
            "starttls": bool(self.options.get("starttls")),
            "login": self.options.get("username"),
            "mail_from": msg["From"],
            "rcpt_to": [a.strip() for a in msg["To"].split(",")],
            "subject": msg["Subject"],
            "body": str(params["body"]),
        }
        if dry_run:
            return ActionResult(self.name, True, True, f"would e-mail {msg['To']}", [request])
        password = self.secret("password_env", required=bool(self.options.get("username")))
        timeout = float(self.options.get("timeout", 30))
        try:
            smtp: smtplib.SMTP
            if self.options.get("ssl"):
                smtp = smtplib.SMTP_SSL(
                    str(self.options["host"]),
                    port,
                    timeout=timeout,
                    context=ssl.create_default_context(),
                )
            else:
                smtp = smtplib.SMTP(str(self.options["host"]), port, timeout=timeout)
            with smtp:
                if self.options.get("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                if self.options.get("username"):
                    smtp.login(str(self.options["username"]), password)
                refused = smtp.send_message(msg)
        except (OSError, smtplib.SMTPException) as e:
            return ActionResult(self.name, False, False, f"SMTP failed: {e}", [request])
        return ActionResult(
            self.name,
            False,
            not refused,
            f"e-mailed {msg['To']}" + (f"; refused {sorted(refused)}" if refused else ""),
            [request],
            [{"refused": sorted(refused), "message_id": msg["Message-ID"]}],
        )
