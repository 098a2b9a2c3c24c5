"""What a failed write means and what to do about it, by ``errno`` (a full disk is not the only cause)."""

from __future__ import annotations

import errno


class BatchWriteError(RuntimeError):
    """Writing failed (a full disk, a read-only or protected file, a folder removed): the message says
    what was published and what to do; the checkpoint is kept to resume."""


def write_problem(exc: OSError) -> tuple[str, str]:
    """(what happened, what to do before running the same command again) for a failed write.

    Free space is the remedy of ENOSPC/EDQUOT only: a read-only file system, a file protected against
    writing (``chattr +i``, permissions) or a folder removed under the run needs another remedy."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    where = f" ({exc.filename})" if exc.filename and str(exc.filename) not in reason else ""
    code = exc.errno
    if code is None and "no space left" in reason.lower():  # an Arrow IOError carries the text only
        code = errno.ENOSPC
    if code == errno.ENOSPC:
        return f"the disk is full ({reason})", "free space"
    if code == errno.EDQUOT:
        return f"the disk quota is exhausted ({reason})", "free space or raise the quota"
    if code == errno.EROFS:
        return (f"the file system is read-only ({reason}{where})",
                "make it writable (or choose an --out on a writable one, which starts the run afresh)")
    if code in (errno.EPERM, errno.EACCES):
        return (f"permission denied ({reason}{where})",
                "give this user write access to the output's folder and files (and clear an immutable "
                "attribute: lsattr/chattr -i)")
    if code == errno.ENOENT:
        return (f"a file or folder disappeared while the run wrote ({reason}{where})",
                "check that nothing else moves or removes the output's folder or its checkpoint")
    return f"{reason}{where}", "remove the cause"
