"""The OS versions IMS accepts (``__os_version``), by platform, as the IMS parameter reference lists them.

Each value implies ``__platform``, ``__os_type`` and ``__os_bit``; see ``describe``.
"""

from __future__ import annotations

from dataclasses import dataclass

# (platform as the OS table names it, __os_version)
OS_VERSIONS: tuple[tuple[str, str], ...] = (
    ("Windows", "Windows 10 64bit"),
    ("Windows", "Windows 7 Enterprise 64bit"),
    ("Windows", "Windows 7 Professional 64bit"),
    ("Windows", "Windows 7 Professional 32bit"),
    ("Windows", "Windows Server 2016 Standard 64bit"),
    ("Windows", "Windows Server 2016 Datacenter 64bit"),
    ("Windows", "Windows Server 2012 R2 Standard 64bit"),
    ("Windows", "Windows Server 2012 Essentials R2 64bit"),
    ("Windows", "Windows Server 2012 R2 Datacenter 64bit"),
    ("Windows", "Windows Server 2012 Datacenter 64bit"),
    ("Windows", "Windows Server 2012 Standard 64bit"),
    ("Windows", "Windows Server 2008 R2 WEB 64bit"),
    ("Windows", "Windows Server 2008 R2 Standard 64bit"),
    ("Windows", "Windows Server 2008 R2 Enterprise 64bit"),
    ("Windows", "Windows Server 2008 R2 Datacenter 64bit"),
    ("SUSE", "SUSE Linux Enterprise Server 15 SP1 64bit"),
    ("SUSE", "SUSE Linux Enterprise Server 15 64bit"),
    ("SUSE", "SUSE Linux Enterprise Server 12 SP5 64bit"),
    ("SUSE", "SUSE Linux Enterprise Server 12 SP4 64bit"),
    ("SUSE", "SUSE Linux Enterprise Server 12 SP3 64bit"),
    ("SUSE", "SUSE Linux Enterprise Server 12 SP2 64bit"),
    ("SUSE", "SUSE Linux Enterprise Server 12 SP1 64bit"),
    ("SUSE", "SUSE Linux Enterprise Server 12 64bit"),
    ("SUSE", "SUSE Linux Enterprise Server 11 SP4 64bit"),
    ("SUSE", "SUSE Linux Enterprise Server 11 SP3 64bit"),
    ("SUSE", "SUSE Linux Enterprise Server 11 SP3 32bit"),
    ("SUSE", "SUSE Linux Enterprise Server 11 SP1 64bit"),
    ("Oracle Linux", "Oracle Linux Server release 7.6 64bit"),
    ("Oracle Linux", "Oracle Linux Server release 7.5 64bit"),
    ("Oracle Linux", "Oracle Linux Server release 7.4 64bit"),
    ("Oracle Linux", "Oracle Linux Server release 7.3 64bit"),
    ("Oracle Linux", "Oracle Linux Server release 7.2 64bit"),
    ("Oracle Linux", "Oracle Linux Server release 7.1 64bit"),
    ("Oracle Linux", "Oracle Linux Server release 7.0 64bit"),
    ("Oracle Linux", "Oracle Linux Server release 6.10 64bit"),
    ("Oracle Linux", "Oracle Linux Server release 6.9 64bit"),
    ("Oracle Linux", "Oracle Linux Server release 6.8 64bit"),
    ("Oracle Linux", "Oracle Linux Server release 6.7 64bit"),
    ("Oracle Linux", "Oracle Linux Server release 6.5 64bit"),
    ("RedHat", "Redhat Linux Enterprise 8.0 64bit"),
    ("RedHat", "Redhat 7.6 64bit"),
    ("RedHat", "Redhat Linux Enterprise 7.5 64bit"),
    ("RedHat", "Redhat Linux Enterprise 7.4 64bit"),
    ("RedHat", "Redhat Linux Enterprise 7.3 64bit"),
    ("RedHat", "Redhat Linux Enterprise 7.2 64bit"),
    ("RedHat", "Redhat Linux Enterprise 7.1 64bit"),
    ("RedHat", "Redhat Linux Enterprise 7.0 64bit"),
    ("RedHat", "Redhat Linux Enterprise 6.10 64bit"),
    ("RedHat", "Redhat Linux Enterprise 6.9 64bit"),
    ("RedHat", "Redhat Linux Enterprise 6.8 64bit"),
    ("RedHat", "Redhat Linux Enterprise 6.7 64bit"),
    ("RedHat", "Redhat Linux Enterprise 6.6 64bit"),
    ("RedHat", "Redhat Linux Enterprise 6.6 32bit"),
    ("RedHat", "Redhat Linux Enterprise 6.5 64bit"),
    ("RedHat", "Redhat Linux Enterprise 6.4 64bit"),
    ("RedHat", "Redhat Linux Enterprise 6.4 32bit"),
    ("Ubuntu", "Ubuntu 19.04 server 64bit"),
    ("Ubuntu", "Ubuntu 18.04 server 64bit"),
    ("Ubuntu", "Ubuntu 16.04.3 Server 64bit"),
    ("Ubuntu", "Ubuntu 16.04.2 Server 64bit"),
    ("Ubuntu", "Ubuntu 16.04 server 64bit"),
    ("Ubuntu", "Ubuntu 14.04.5 server 64bit"),
    ("Ubuntu", "Ubuntu 14.04.4 server 64bit"),
    ("Ubuntu", "Ubuntu 14.04.4 server 32bit"),
    ("Ubuntu", "Ubuntu 14.04.3 server 64bit"),
    ("Ubuntu", "Ubuntu 14.04.3 server 32bit"),
    ("Ubuntu", "Ubuntu 14.04.1 server 64bit"),
    ("Ubuntu", "Ubuntu 14.04.1 server 32bit"),
    ("Ubuntu", "Ubuntu 14.04 server 64bit"),
    ("Ubuntu", "Ubuntu 14.04 server 32bit"),
    ("openSUSE", "openSUSE 42.3 64bit"),
    ("openSUSE", "openSUSE 42.2 64bit"),
    ("openSUSE", "openSUSE 42.1 64bit"),
    ("openSUSE", "openSUSE 15.1 64bit"),
    ("openSUSE", "openSUSE 15.0 64bit"),
    ("openSUSE", "openSUSE 13.2 64bit"),
    ("openSUSE", "openSUSE 11.3 64bit"),
    ("CentOS", "CentOS 8.0 64bit"),
    ("CentOS", "CentOS 7.7 64bit"),
    ("CentOS", "CentOS 7.6 64bit"),
    ("CentOS", "CentOS 7.5 64bit"),
    ("CentOS", "CentOS 7.4 64bit"),
    ("CentOS", "CentOS 7.3 64bit"),
    ("CentOS", "CentOS 7.2 64bit"),
    ("CentOS", "CentOS 7.1 64bit"),
    ("CentOS", "CentOS 7.0 64bit"),
    ("CentOS", "CentOS 7.0 32bit"),
    ("CentOS", "CentOS 6.10 64bit"),
    ("CentOS", "CentOS 6.10 32bit"),
    ("CentOS", "CentOS 6.9 64bit"),
    ("CentOS", "CentOS 6.9 32bit"),
    ("CentOS", "CentOS 6.8 64bit"),
    ("CentOS", "CentOS 6.7 64bit"),
    ("CentOS", "CentOS 6.7 32bit"),
    ("CentOS", "CentOS 6.6 64bit"),
    ("CentOS", "CentOS 6.6 32bit"),
    ("CentOS", "CentOS 6.5 64bit"),
    ("CentOS", "CentOS 6.5 32bit"),
    ("CentOS", "CentOS 6.4 64bit"),
    ("CentOS", "CentOS 6.4 32bit"),
    ("CentOS", "CentOS 6.3 64bit"),
    ("CentOS", "CentOS 6.3 32bit"),
    ("Debian", "Debian GNU/Linux 10.0.0 64bit"),
    ("Debian", "Debian GNU/Linux 9.3.0 64bit"),
    ("Debian", "Debian GNU/Linux 9.0.0 64bit"),
    ("Debian", "Debian GNU/Linux 8.10.0 64bit"),
    ("Debian", "Debian GNU/Linux 8.8.0 64bit"),
    ("Debian", "Debian GNU/Linux 8.7.0 64bit"),
    ("Debian", "Debian GNU/Linux 8.6.0 64bit"),
    ("Debian", "Debian GNU/Linux 8.5.0 64bit"),
    ("Debian", "Debian GNU/Linux 8.4.0 64bit"),
    ("Debian", "Debian GNU/Linux 8.2.0 64bit"),
    ("Debian", "Debian GNU/Linux 8.1.0 64bit"),
    ("Fedora", "Fedora 30 64bit"),
    ("Fedora", "Fedora 29 64bit"),
    ("Fedora", "Fedora 28 64bit"),
    ("Fedora", "Fedora 27 64bit"),
    ("Fedora", "Fedora 26 64bit"),
    ("Fedora", "Fedora 25 64bit"),
    ("Fedora", "Fedora 24 64bit"),
    ("Fedora", "Fedora 23 64bit"),
    ("Fedora", "Fedora 22 64bit"),
    ("EulerOS", "EulerOS 2.9 64bit"),
    ("EulerOS", "EulerOS 2.5 64bit"),
    ("EulerOS", "EulerOS 2.3 64bit"),
    ("EulerOS", "EulerOS 2.2 64bit"),
    ("EulerOS", "EulerOS 2.1 64bit"),
    ("CoreOS", "CoreOS 1068.10.0"),
    ("CoreOS", "CoreOS 1010.5.0"),
    ("CoreOS", "CoreOS 1298.6.0"),
    ("openEuler", "openEuler 20.03 64bit"),
)


@dataclass(frozen=True)
class OsVersion:
    os_version: str
    platform: str  # __platform
    os_type: str  # __os_type: Linux or Windows
    os_bit: str  # __os_bit: "32" or "64"


# The table says "RedHat"/"openSUSE"; __platform spells them as image_attributes.rst does.
_PLATFORM = {"RedHat": "Red Hat", "openSUSE": "OpenSUSE"}


def _describe(platform: str, version: str) -> OsVersion:
    os_type = "Windows" if platform == "Windows" else "Linux"
    bit = "32" if "32bit" in version.replace(" ", "") else "64"
    return OsVersion(version, _PLATFORM.get(platform, platform), os_type, bit)


_BY_VERSION = {v.lower(): _describe(p, v) for p, v in OS_VERSIONS}


def describe(os_version: str) -> OsVersion | None:
    """The attributes an OS version implies, or None if IMS does not know it (case-insensitive)."""
    return _BY_VERSION.get(os_version.strip().lower())


def all_versions() -> list[OsVersion]:
    return [_describe(p, v) for p, v in OS_VERSIONS]
