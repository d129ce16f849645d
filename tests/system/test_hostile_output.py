"""A check whose output is hostile (terminal escapes, a clipboard write, Slack mentions
and links, a NUL, a secret): every surface that shows it shows it harmlessly."""

from __future__ import annotations

import json
import sys

import pytest

from tests.helpers import Receiver, run_vigil, wait_until

#: What the check prints: OSC 52 (write the clipboard), a recolour, an erase of the
#: line, a title change, a C1 control, a mention of everyone and a link for Slack, a
#: NUL, and a secret. (No `|`: Nagios output ends its text there.)
HOSTILE = ("\x1b]52;c;ZXZpbA==\x07 \x1b[31mred \x1b[2K\x1b]0;pwned\x07 \x9b1m "
           "<!channel> <https://evil.example> @channel @here [click](https://evil.example) "
           "![img](https://evil.example/t.png) ``` \u202e \x00 token=s3cr3tvalue")
RAW = ("\x1b", "\x07", "\x9b", "\x00", "\u202e")


@pytest.fixture
def hostile(write_config, receiver: Receiver, tmp_path):
    program = f"import sys; sys.stdout.write({HOSTILE!r}); sys.exit(2)"
    sent = tmp_path / "sent"
    keep = f"import os; open({str(sent)!r}, 'w').write(os.environ['VIGIL_ALERT_SUMMARY'])"
    return write_config(f"""
        [daemon]
        state_dir = "state"
        log_file = "vigil.log"
        http = ""
        [checks.evil]
        type = "exec"
        command = ["{sys.executable}", "-c", {json.dumps(program)}]
        interval = "1s"
        fall = 1
        [alerts.chat]
        type = "slack"
        url = "{receiver.url('/slack')}"
        [alerts.phone]
        type = "ntfy"
        url = "{receiver.url('/ntfy')}"
        [alerts.pager]
        type = "command"
        command = ["{sys.executable}", "-c", {json.dumps(keep)}]
    """), sent


def harmless(text: str, where: str) -> None:
    for raw in RAW:
        assert raw not in text, f"{where} printed {raw!r}: {text!r}"
    assert "s3cr3tvalue" not in text, f"{where} showed the secret"


def test_the_command_line_shows_a_hostile_check_harmlessly(hostile, daemon) -> None:
    config, _ = hostile
    d = daemon(config).start()
    d.wait_for("check.state_changed", check="evil", to="FAILING")
    status = run_vigil("status", "-c", str(config))
    harmless(status.stdout, "vigil status")
    assert "\\x1b]52;c;ZXZpbA==\\x07" in status.stdout, status.stdout
    check = run_vigil("check", "evil", "-c", str(config))
    assert check.returncode == 2
    harmless(check.stdout, "vigil check")
    assert "\\x1b[31mred" in check.stdout
    logs = run_vigil("logs", "--check", "evil", "-c", str(config))
    harmless(logs.stdout, "vigil logs")
    assert "\\x1b[2K" in logs.stdout
    wait_until(lambda: "CRIT" in run_vigil("history", "evil", "-c", str(config)).stdout, 10,
               "a result in the history")
    history = run_vigil("history", "evil", "-c", str(config))
    harmless(history.stdout, "vigil history")
    assert "\\x1b]0;pwned\\x07" in history.stdout


def test_sinks_get_a_hostile_check_escaped_for_them(hostile, daemon, receiver) -> None:
    config, sent = hostile
    d = daemon(config).start()
    wait_until(lambda: receiver.at("/slack") and receiver.at("/ntfy") and sent.exists(), 20,
               "the alert at every sink")
    slack = receiver.at("/slack")[0]["text"]
    assert "<!channel>" not in slack and "&lt;!channel&gt;" in slack, slack
    assert "<https://evil.example>" not in slack
    assert "&lt;https://evil.example&gt;" in slack
    # Slack, Mattermost and Rocket.Chat parse no mention, link or image in a code block,
    # and the check's own fence does not end it.
    _icon, fence, block = slack.partition("\n```\n")
    assert fence and block.endswith("\n```") and "```" not in block[:-4], slack
    assert "@channel" in block and "[click](https://evil.example)" in block
    harmless(slack, "the Slack message")
    harmless(receiver.at("/ntfy")[0], "the ntfy message")
    # The command sink's environment carries the NUL as an escape: delivered, not failed.
    assert "\\x00" in sent.read_text()
    d.wait_for("alert.sent", sink="pager")
    assert not d.events("alert.failed")
    assert "s3cr3tvalue" not in json.dumps(receiver.posts)
