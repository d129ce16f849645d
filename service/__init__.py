"""Service managers (systemd, launchd, brew, command), each a plugin, and the installer
that runs vigil itself as a systemd unit or a LaunchAgent."""
