"""Where the config tree lives and how ablate composes it.

`conf/` (one run), `sweeps/` (sets of runs) and `analysis/` (tables) sit at the project root.
The root is found from ``ABLATE_PROJECT``, else by walking up from the working directory,
else next to the installed package (editable installs), so ``ablate`` works from any
sub-directory of a checkout.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Iterable, Optional

from ablate.errors import ConfigError

if TYPE_CHECKING:  # omegaconf is imported where it is used: a cached compose needs none of it
    from omegaconf import DictConfig

PRIMARY = "train"  # conf/train.yaml


def project_root() -> Path:
    """The directory that holds ``conf/train.yaml``."""
    env = os.environ.get("ABLATE_PROJECT")
    if env:
        root = Path(env).resolve()
        if not (root / "conf" / f"{PRIMARY}.yaml").is_file():
            raise ConfigError(f"ABLATE_PROJECT={env!r} has no conf/{PRIMARY}.yaml")
        return root
    here = Path.cwd().resolve()
    for cand in (here, *here.parents):
        if (cand / "conf" / f"{PRIMARY}.yaml").is_file():
            return cand
    pkg_parent = Path(__file__).resolve().parent.parent
    if (pkg_parent / "conf" / f"{PRIMARY}.yaml").is_file():
        return pkg_parent
    raise ConfigError(
        f"no ablate project found: no conf/{PRIMARY}.yaml above {here}; "
        "run from a checkout or set ABLATE_PROJECT"
    )


def config_dir() -> Path:
    return project_root() / "conf"


def compose(overrides: Iterable[str] = ()) -> DictConfig:
    """Compose ``conf/train.yaml`` with Hydra overrides, exactly as ``ablate train`` would.

    Unknown groups, options or keys raise a one-line ``ValueError`` naming the bad value
    and, for a group option, the options that exist.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        try:
            return hydra_compose(config_name=PRIMARY, overrides=overrides)
        except MissingConfigException as exc:
            raise ConfigError(_first_line(exc)) from None
        except (HydraException, OmegaConfBaseException) as exc:
            raise ConfigError(f"bad override in {overrides}: {_first_line(exc)}") from None


# Resolvers whose value depends on nothing but the config (``oc.env`` is stamped with the
# variable's value): a config using any other (``now``, ``hydra:runtime.*``, a custom one) is
# composed every time, never taken from the cache.
PURE_RESOLVERS = ("oc.env", "oc.select", "oc.decode", "oc.create", "oc.deprecated", "oc.dict.keys",
                  "oc.dict.values")
_RESOLVER = re.compile(r"\$\{\s*([\w.]+)\s*:")
_ENV_NAME = re.compile(r"\$\{\s*oc\.env\s*:\s*([A-Za-z_]\w*)\s*[,}]")


def compose_containers(override_sets: Iterable[Iterable[str]]) -> list[dict]:
    """``[to_container(compose(o)) for o in override_sets]``, each from the compose cache
    (``ablate.cache``) when nothing it depends on has changed: the files under ``conf/``, the
    installed Hydra and OmegaConf, the working directory and the environment variables the
    config reads. Hydra composes only the others (~0.1 s each); a bad override is the same
    one-line ``ConfigError`` as ``compose``'s."""
    from ablate import cache

    sets = [list(o) for o in override_sets]
    if cache.cache_dir() is None:
        return [to_container(compose(o)) for o in sets]
    cdir = config_dir()
    stamp = {"conf": cache.tree_digest(cdir), "libs": cache.package_stamp(("hydra", "omegaconf")),
             "python": sys.version}
    cwd = os.getcwd()
    out, conf_env = [], ...  # the env names conf/ reads: looked up at the first miss
    for overrides in sets:
        slot = cache.digest("compose", str(cdir), cwd, overrides)
        entry = cache.read("compose", slot)
        if entry is not None and entry.get("stamp") == stamp and all(
                os.environ.get(k) == v for k, v in entry.get("env", {}).items()):
            out.append(entry["config"])
            continue
        cfg = compose(overrides)
        config = to_container(cfg)
        if conf_env is ...:
            conf_env = _conf_env_names(cdir)
        env = _env_read(cfg, conf_env)
        if env is not None and _json_exact(config):
            cache.write("compose", slot, {"stamp": stamp, "env": env, "config": config})
        out.append(config)
    return out


def compose_container(overrides: Iterable[str] = ()) -> dict:
    """One resolved config as a plain dict, through the compose cache (``compose_containers``)."""
    return compose_containers([overrides])[0]


def paths_config(overrides: Iterable[str] = ()) -> SimpleNamespace:
    """The ``paths`` group (``paths.*`` overrides applied, others ignored) as attributes
    (``.output_dir``, ``.runs_dir``, ``.sweeps_dir``, ``.tables_dir``, ``.data_dir``), through
    the compose cache: reading where results live costs no Hydra compose once cached."""
    paths = compose_container([o for o in overrides if o.startswith("paths.")])["paths"]
    return SimpleNamespace(**paths)


def _conf_env_names(cdir: Path) -> Optional[set]:
    """The environment variables any file under ``conf/`` reads (``${oc.env:NAME}``), or None
    when one is named through another interpolation (not statically known)."""
    names: set = set()
    for path in sorted(cdir.rglob("*.yaml")):
        try:
            found = _env_names(path.read_text(errors="replace"))
        except OSError:
            return None
        if found is None:
            return None
        names |= found
    return names


def _env_names(text: str) -> Optional[set]:
    names = _ENV_NAME.findall(text)
    return set(names) if text.count("oc.env") == len(names) else None


def _env_read(cfg: DictConfig, conf_env: Optional[set]) -> Optional[dict]:
    """The environment variables a composed config reads (``${oc.env:NAME}`` in its values, or
    in any file under ``conf/``: ``conf_env``) with their values now; None when it uses a
    resolver whose value the config does not fix (``now``, ``hydra:``, a custom one) or names
    a variable through another interpolation: such a config is never cached."""
    import json

    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(cfg, resolve=False)
    raw.pop("hydra", None)  # Hydra's own node (run dirs with ${now:...}): not part of the result
    text = json.dumps(raw, default=str)
    if conf_env is None or any(r not in PURE_RESOLVERS for r in _RESOLVER.findall(text)):
        return None
    names = _env_names(text)
    if names is None:
        return None
    return {n: os.environ.get(n) for n in sorted(names | conf_env)}


def _json_exact(config: dict) -> bool:
    """True when ``config`` survives a JSON round trip unchanged (string keys, no NaN, ...)."""
    import json

    try:
        return json.loads(json.dumps(config)) == config
    except (TypeError, ValueError):
        return False


def group_options(group: str) -> list[str]:
    """The options of a config group, e.g. ``group_options("attention")``."""
    gdir = config_dir() / group
    return sorted(p.stem for p in gdir.glob("*.yaml"))


def _first_line(exc: BaseException) -> str:
    """Hydra's multi-line errors folded into one line (the options list kept, search path dropped)."""
    raw = [ln for ln in str(exc).splitlines() if ln.strip()]
    if not raw:
        return type(exc).__name__
    head, options = raw[0].strip(), []
    for i, ln in enumerate(raw[1:], 1):
        if ln.lower().startswith("available options"):
            for opt in raw[i + 1:]:
                if not opt.startswith(("\t", " ")):
                    break
                options.append(opt.strip())
            break
    if options:
        return f"{head}; allowed: {', '.join(options)}"
    return " ".join(ln.strip() for ln in raw if not ln.startswith(("\t", "Config search path")))


def to_container(cfg: DictConfig | dict) -> dict:
    """Resolved plain-dict view of a run config (no ``hydra`` node); a plain dict (already
    resolved, as from ``compose_containers``) comes back as a deep copy."""
    if isinstance(cfg, dict):
        import copy

        data = copy.deepcopy(cfg)
        data.pop("hydra", None)
        return data
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    data.pop("hydra", None)
    return data


def spec_path(name: str, directory: Path, what: str) -> Path:
    """``<directory>/<name>.yaml`` (or ``name`` itself if it is a YAML path); unknown names are
    a one-line error listing the files that exist."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else directory / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in directory.glob("*.yaml"))) or f"(none in {directory.name}/)"
        raise ConfigError(f"unknown {what} {name!r}; allowed: {known}")
    return path


def load_yaml(path: Path, what: str) -> DictConfig:
    """A YAML file holding a mapping, as a DictConfig; a syntax error is one line naming the file,
    the problem and where it is (``line 2, column 6``), not a parser traceback."""
    import yaml
    from omegaconf import DictConfig, OmegaConf

    try:
        raw = OmegaConf.load(path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{what} {path.stem!r}: {path} is not valid YAML ({problem}{where}); "
                          "allowed: a YAML mapping of keys to values") from None
    if not isinstance(raw, DictConfig):
        raise ConfigError(f"{what} {path.stem!r}: {path} holds a {type(raw).__name__}; "
                          "allowed: a YAML mapping of keys to values")
    return raw


def check_spec_name(what: str, name: object) -> str:
    """A sweep or table name becomes a file or directory name under the output dir: refuse one
    that is empty or could leave it (``/``, ``\\``, ``..``)."""
    bad = not isinstance(name, str) or not name.strip() or name in (".",) or any(
        s in name for s in ("/", "\\", "..", "\0"))
    if bad:
        raise ConfigError(f"{what} name {name!r} is not allowed; allowed: a non-empty name without '/', "
                          "'\\' or '..' (it names files under the output dir)")
    return name


def load_structured(path: Path, cls: type, what: str):
    """Load a YAML file into dataclass ``cls`` (OmegaConf-validated: unknown keys and wrong
    types are one-line errors); ``name`` defaults to the file's stem and must be a safe file name."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    raw = load_yaml(path, what)
    raw.setdefault("name", path.stem)
    try:
        data = OmegaConf.to_container(OmegaConf.merge(OmegaConf.structured(cls), raw), resolve=True)
    except OmegaConfBaseException as exc:
        raise ConfigError(f"{what} {path.stem!r}: {str(exc).splitlines()[0]}") from None
    check_spec_name(what, data.get("name"))
    return cls(**data)
