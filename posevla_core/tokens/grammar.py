"""Pose tokens: a prediction as a fixed-grammar token sequence, and back.

Why one module: encoding and decoding must agree token for token; the vocabulary, the
grammar, the bins and both directions sit in one file so they change together.

Vocabulary (ids are contiguous blocks):
    PAD BOS EOS <no_object> | categories | box bins | position bins | rotation bins | size bins | gripper bins
Grammar of one prediction (after BOS):
    <no_object>                                                   (the named object is not in view)
  | category, box (x1, y1, x2, y2), object (x, y, z), object rotation (a, b, c), object size (sx, sy, sz),
    T x waypoint (x, y, z, a, b, c, gripper), EOS
Every step has one token block (step 0: <no_object> or a category), so constrained decoding
is "pick the argmax inside this step's block" and every decoded sequence parses. After
<no_object> the rest of the sequence carries no meaning (training ignores it, decoding stops).

A second grammar answers "detect the {category}" prompts (``grammar_of``): every instance in
view, near to far, then EOS:
    <no_object> | instance (category, box, xyz, rotation, size) x k (1 <= k <= max_instances), EOS
where the category step of instance 2.. also allows EOS. It fits the same sequence length
(max_instances = (seq_len - 1) // 14), so both grammars share one model and one decode loop;
``masks[grammar]`` is the per-step allowed-token mask of each.

Quantization: positions and sizes use bin edges (percentile-spaced when fitted from data by
``fit_bins``, else uniform over the configured range); a value decodes at its bin's midpoint,
so the error is <= half that bin's width. Values outside the edges are clipped to the edge bin
AND reported by field name (``encode``'s second return; training logs the clipped fraction).

Rotations: the rotation relative to a reference (``R_ref^T R``) as Euler angles, each in 360
(``rotation_bins``) circular bins over [-pi, pi): the last bin is the neighbour of the first,
in the soft labels (``step_circular``) as in the decoding. Object rotations are first made
canonical under the category's symmetry (symmetry.canonicalize, closest to the reference).
docs/pose_tokens.md gives the measurements behind this choice.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial.transform import Rotation

from posevla_core.config import TokenizerConfig
from posevla_core.geometry import symmetry
from posevla_core.poses import Pose, PoseTarget, Waypoint

PAD, BOS, EOS, NO_OBJECT = 0, 1, 2, 3
ACT, DETECT = 0, 1            # the two grammars: an instruction's answer, a "detect the ..." answer
XYZ = ("x", "y", "z")
ROT = ("ra", "rb", "rc")
GROUNDING_FIELDS = ("category", "box.x1", "box.y1", "box.x2", "box.y2", "object.x", "object.y", "object.z",
                    "object.ra", "object.rb", "object.rc", "object.sx", "object.sy", "object.sz")


@dataclass(frozen=True)
class Block:
    """A contiguous range of token ids [start, start + size)."""

    start: int
    size: int

    @property
    def stop(self) -> int:
        return self.start + self.size


def uniform_edges(lo: float, hi: float, n: int) -> np.ndarray:
    return np.linspace(lo, hi, n + 1)


def grammar_of(instruction: str) -> int:
    """DETECT for a "detect the {category}" prompt (list every instance), else ACT."""
    return DETECT if instruction.strip().lower().startswith("detect ") else ACT


class PoseTokenizer:
    def __init__(self, cfg: TokenizerConfig) -> None:
        self.cfg = cfg
        start = NO_OBJECT + 1
        self.blocks: dict[str, Block] = {}
        for name, size in (("category", len(cfg.categories)), ("box", cfg.box_bins),
                           ("position", cfg.position_bins), ("rotation", cfg.rotation_bins),
                           ("size", cfg.size_bins), ("gripper", cfg.gripper_bins)):
            self.blocks[name] = Block(start, size)
            start += size
        self.vocab_size = start
        self.position_edges = [np.asarray(e, float) for e in cfg.position_edges] if cfg.position_edges else \
            [uniform_edges(cfg.position_min[a], cfg.position_max[a], cfg.position_bins) for a in range(3)]
        self.size_edges = np.asarray(cfg.size_edges, float) if cfg.size_edges else \
            uniform_edges(0.0, cfg.size_max, cfg.size_bins)
        self.box_edges = uniform_edges(0.0, 1.0, cfg.box_bins)
        self.rot_ref = {"object": Rotation.from_quat(cfg.object_rotation_ref).as_matrix(),
                        "hand": Rotation.from_quat(cfg.hand_rotation_ref).as_matrix()}
        # The grammar: one (field name, block name) per step after BOS.
        steps = [("category", "category")]
        steps += [(f"box.{c}", "box") for c in ("x1", "y1", "x2", "y2")]
        steps += [(f"object.{a}", "position") for a in XYZ] + [(f"object.{r}", "rotation") for r in ROT]
        steps += [(f"object.s{a}", "size") for a in XYZ]
        for t in range(cfg.num_waypoints):
            steps += [(f"wp{t}.{a}", "position") for a in XYZ] + [(f"wp{t}.{r}", "rotation") for r in ROT]
            steps.append((f"wp{t}.gripper", "gripper"))
        steps.append(("eos", "eos"))
        self.steps = steps
        self.seq_len = len(steps)
        self.num_grounding_steps = len(GROUNDING_FIELDS)   # what stage 1 supervises
        lo = np.array([self._range(b)[0] for _, b in steps], dtype=np.int64)
        hi = np.array([self._range(b)[1] for _, b in steps], dtype=np.int64)
        lo[0] = NO_OBJECT                                  # step 0: <no_object> or a category
        self.step_lo, self.step_hi = lo, hi
        # Soft labels in training: numeric bins get them (rotation ones wrap around), the
        # category / gripper / eos steps do not.
        self.step_ordinal = np.array([b in ("box", "position", "rotation", "size") for _, b in steps])
        self.step_circular = np.array([b == "rotation" for _, b in steps])
        # The detect grammar: instance blocks of the grounding steps, then EOS; (2, S) arrays
        # of both grammars (step_lo/hi: the numeric block of an ordinal step, for soft labels).
        G = self.num_grounding_steps
        self.max_instances = (self.seq_len - 1) // G
        d_lo, d_hi, d_ord, d_circ = (np.zeros(self.seq_len, np.int64), np.zeros(self.seq_len, np.int64),
                                     np.zeros(self.seq_len, bool), np.zeros(self.seq_len, bool))
        n = self.max_instances * G
        for k in range(n):
            j = k % G
            d_lo[k], d_hi[k], d_ord[k], d_circ[k] = lo[j], hi[j], self.step_ordinal[j], self.step_circular[j]
        d_lo[n:], d_hi[n:] = EOS, EOS + 1
        self.grammar_lo, self.grammar_hi = np.stack([lo, d_lo]), np.stack([hi, d_hi])
        self.grammar_ordinal = np.stack([self.step_ordinal, d_ord])
        self.grammar_circular = np.stack([self.step_circular, d_circ])
        self.masks = np.zeros((2, self.seq_len, self.vocab_size), dtype=bool)
        for g in (ACT, DETECT):
            for k in range(self.seq_len):
                self.masks[g, k, self.grammar_lo[g, k]:self.grammar_hi[g, k]] = True
        for m in range(1, self.max_instances):
            self.masks[DETECT, m * G, EOS] = True               # no further instance
            self.masks[DETECT, m * G, NO_OBJECT] = False

    # ---- blocks and the grammar -------------------------------------------------------------
    def _range(self, block: str) -> tuple[int, int]:
        if block == "eos":
            return EOS, EOS + 1
        b = self.blocks[block]
        return b.start, b.stop

    def allowed_range(self, step: int) -> tuple[int, int]:
        """Token ids allowed at grammar step ``step`` (0 = the token after BOS): [lo, hi)."""
        return int(self.step_lo[step]), int(self.step_hi[step])

    def step_mask(self, grammar: int = ACT) -> np.ndarray:
        """(seq_len, vocab) boolean mask of allowed tokens per step, for constrained decoding."""
        return self.masks[grammar].copy()

    def token_names(self) -> list[str]:
        """Human-readable name of every token id (written into checkpoints as the pose vocab)."""
        names = ["<pad>", "<bos>", "<eos>", "<no_object>"]
        names += [f"<cat:{c}>" for c in self.cfg.categories]
        for blk in ("box", "position", "rotation", "size", "gripper"):
            names += [f"<{blk}:{i}>" for i in range(self.blocks[blk].size)]
        return names

    def step_values(self, step: int) -> np.ndarray | None:
        """The metric value each token of an ordinal step decodes to (bin midpoints; radians
        for rotation steps), None for non-numeric steps. Used by the model's copy prior."""
        name, block = self.steps[step]
        if block == "eos":
            return None
        if block == "box":
            e = self.box_edges
        elif block == "position":
            e = self.position_edges[XYZ.index(name[-1])]
        elif block == "size":
            e = self.size_edges
        elif block == "rotation":
            n = self.cfg.rotation_bins
            return -math.pi + (np.arange(n) + 0.5) * 2 * math.pi / n
        else:
            return None
        return 0.5 * (e[:-1] + e[1:])

    # ---- scalar quantization ----------------------------------------------------------------
    @staticmethod
    def _bin(v: float, edges: np.ndarray) -> tuple[int, bool]:
        """Bin index of ``v`` and whether it was clipped into the edge bin."""
        if not math.isfinite(v):
            raise ValueError(f"cannot tokenize a non-finite value {v}")
        clipped = v < edges[0] or v > edges[-1]
        i = int(np.searchsorted(edges, v, side="right")) - 1
        return min(max(i, 0), len(edges) - 2), clipped

    def _angle_bin(self, a: float) -> int:
        n = self.cfg.rotation_bins
        return int(math.floor((a + math.pi) / (2 * math.pi) * n)) % n

    def _angle(self, i: int) -> float:
        n = self.cfg.rotation_bins
        return -math.pi + (i + 0.5) * 2 * math.pi / n

    def bin_width(self, kind: str, axis: int = 0, value: float | None = None) -> float:
        """Width of the bin holding ``value`` (default: the widest bin) of ``kind``."""
        if kind == "rotation":
            return 2 * math.pi / self.cfg.rotation_bins
        e = {"position": lambda: self.position_edges[axis], "size": lambda: self.size_edges,
             "box": lambda: self.box_edges}[kind]()
        if value is None:
            return float(np.diff(e).max())
        return float(np.diff(e)[self._bin(value, e)[0]])

    def rotation_tokens(self, R: np.ndarray, ref: str) -> list[int]:
        with warnings.catch_warnings():
            # at gimbal lock scipy sets the third angle to 0: still an exact decomposition of R
            warnings.filterwarnings("ignore", message="Gimbal lock detected")
            eul = Rotation.from_matrix(self.rot_ref[ref].T @ R).as_euler(self.cfg.rotation_order)
        return [self.blocks["rotation"].start + self._angle_bin(float(a)) for a in eul]

    def rotation_from_tokens(self, ids: list[int], ref: str) -> np.ndarray:
        eul = [self._angle(i - self.blocks["rotation"].start) for i in ids]
        return self.rot_ref[ref] @ Rotation.from_euler(self.cfg.rotation_order, eul).as_matrix()

    def canonical_rotation(self, category: str, R: np.ndarray) -> np.ndarray:
        """The object's rotation label: canonical under its category's symmetry."""
        kind = self.cfg.symmetries.get(category, "none")
        return symmetry.canonicalize(R, kind, self.rot_ref["object"])

    def _position_tokens(self, p: np.ndarray, prefix: str, clipped: list[str]) -> list[int]:
        ids = []
        for a in range(3):
            i, clip = self._bin(float(p[a]), self.position_edges[a])
            ids.append(self.blocks["position"].start + i)
            if clip:
                clipped.append(f"{prefix}.{XYZ[a]}")
        return ids

    def _position(self, ids: list[int]) -> np.ndarray:
        out = []
        for a in range(3):
            e, i = self.position_edges[a], ids[a] - self.blocks["position"].start
            out.append(0.5 * (e[i] + e[i + 1]))
        return np.array(out)

    # ---- whole predictions ------------------------------------------------------------------
    def encode(self, target: PoseTarget) -> tuple[list[int], list[str]]:
        """Token ids of ``target`` (without BOS; with EOS when it has waypoints) and the names
        of clipped fields. An absent object encodes as [<no_object>]; a target without
        waypoints (grounding data) as the grounding steps only; the trainer masks the rest.
        A detect answer (``target.instances`` not None) encodes its instances (at most
        ``max_instances``, the nearest) and EOS, under the DETECT grammar."""
        c, clipped = self.cfg, []
        if not target.found or target.instances == []:
            return [NO_OBJECT], clipped
        if target.instances is not None:
            ids = []
            for t in target.instances[: self.max_instances]:
                sub, cl = self.encode(replace(t, waypoints=[], instances=None))
                ids += sub
                clipped += cl
            if len(target.instances) > self.max_instances:
                clipped.append("instances")
            return ids + [EOS], clipped
        if target.category not in c.categories:
            raise ValueError(f"unknown category {target.category!r}; known: {c.categories}")
        ids = [self.blocks["category"].start + c.categories.index(target.category)]
        box = target.box_xyxy
        if box is None:
            raise ValueError("a target needs its 2D box (box_xyxy); grounding data without one must be converted")
        for k, name in enumerate(("box.x1", "box.y1", "box.x2", "box.y2")):
            i, clip = self._bin(float(box[k]), self.box_edges)
            ids.append(self.blocks["box"].start + i)
            if clip:
                clipped.append(name)
        obj = target.object_pose
        ids += self._position_tokens(obj.position, "object", clipped)
        ids += self.rotation_tokens(self.canonical_rotation(target.category, obj.matrix()[:3, :3]), "object")
        size = target.size
        if size is None:
            raise ValueError("a target needs the object size (meters along its axes)")
        for a in range(3):
            i, clip = self._bin(float(size[a]), self.size_edges)
            ids.append(self.blocks["size"].start + i)
            if clip:
                clipped.append(f"object.s{XYZ[a]}")
        if not target.waypoints:
            return ids, clipped
        if len(target.waypoints) != c.num_waypoints:
            raise ValueError(f"target has {len(target.waypoints)} waypoints, the config expects {c.num_waypoints}")
        for t, wp in enumerate(target.waypoints):
            ids += self._position_tokens(wp.pose.position, f"wp{t}", clipped)
            ids += self.rotation_tokens(wp.pose.matrix()[:3, :3], "hand")
            g = int(math.floor(float(np.clip(wp.gripper, 0.0, 1.0)) * (c.gripper_bins - 1) + 0.5))   # 0.5 -> open
            ids.append(self.blocks["gripper"].start + g)
        ids.append(EOS)
        return ids, clipped

    def _first_bad(self, ids: list[int], grammar: int) -> int | None:
        """The first step that breaks ``grammar`` (None: ``ids`` is a complete answer)."""
        if len(ids) >= 1 and int(ids[0]) == NO_OBJECT:
            return None
        n = self.seq_len
        if grammar == DETECT and EOS in ids:
            n = ids.index(EOS) + 1                       # what follows EOS is not read
        if len(ids) < n:
            return len(ids)
        m = self.masks[grammar]
        return next((k for k in range(n) if not (0 <= ids[k] < self.vocab_size and m[k, ids[k]])), None)

    def is_valid(self, ids: list[int], grammar: int = ACT) -> bool:
        """True when ``ids`` (without BOS) is a complete answer under ``grammar`` (or starts with <no_object>)."""
        return self._first_bad([int(i) for i in ids], grammar) is None

    def decode(self, ids: list[int], grammar: int = ACT) -> PoseTarget:
        """The PoseTarget of a full grammar sequence (without BOS). Raises ValueError otherwise."""
        ids = [int(i) for i in ids]
        bad = self._first_bad(ids, grammar)
        if bad is not None:
            raise ValueError(f"token sequence does not follow the pose grammar (length {len(ids)}, "
                             f"expected {self.seq_len}; first bad step {bad})")
        if ids[0] == NO_OBJECT:
            return PoseTarget.absent()
        if grammar == DETECT:
            G, inst = self.num_grounding_steps, []
            for m in range(self.max_instances):
                if ids[m * G] == EOS:
                    break
                inst.append(self._grounding(ids[m * G:(m + 1) * G]))
            return replace(inst[0], instances=inst)
        c = self.cfg
        wps, k = [], self.num_grounding_steps
        for _ in range(c.num_waypoints):
            pose = Pose.from_matrix(_T(self._position(ids[k:k + 3]), self.rotation_from_tokens(ids[k + 3:k + 6], "hand")))
            g = (ids[k + 6] - self.blocks["gripper"].start) / (c.gripper_bins - 1)
            wps.append(Waypoint(pose, float(g)))
            k += 7
        return replace(self._grounding(ids[:self.num_grounding_steps]), waypoints=wps)

    def _grounding(self, ids: list[int]) -> PoseTarget:
        """One object from its grounding steps (category, box, xyz, rotation, size)."""
        category = self.cfg.categories[ids[0] - self.blocks["category"].start]
        e = self.box_edges
        box = tuple(float(0.5 * (e[i] + e[i + 1])) for i in (j - self.blocks["box"].start for j in ids[1:5]))
        R = self.rotation_from_tokens(ids[8:11], "object")
        obj = Pose.from_matrix(_T(self._position(ids[5:8]), R))
        se = self.size_edges
        size = np.array([0.5 * (se[i] + se[i + 1]) for i in (j - self.blocks["size"].start for j in ids[11:14])])
        return PoseTarget(category, ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), obj, [], box_xyxy=box,
                          size=size)


def _T(p: np.ndarray, R: np.ndarray) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, p
    return T


# ---- bins fitted to data ---------------------------------------------------------------------
def percentile_edges(values: np.ndarray, n: int, uniform_weight: float = 0.2, margin: float = 0.05) -> list[float]:
    """``n + 1`` strictly increasing edges: a mixture of the data's percentiles (weight
    ``1 - uniform_weight``) and uniform spacing over the same range, which keeps every bin at
    least ``uniform_weight * range / n`` wide even where the data pile up on a few values. The
    range is widened by ``margin`` of its span on both sides so that values just outside the
    training data are not clipped."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        raise ValueError("need at least 2 finite values to fit bins")
    lo, hi = float(v.min()), float(v.max())
    span = max(hi - lo, 1e-3)
    lo, hi = lo - margin * span, hi + margin * span
    q = np.quantile(np.clip(v, lo, hi), np.linspace(0, 1, n + 1))
    q[0], q[-1] = lo, hi
    e = (1 - uniform_weight) * q + uniform_weight * np.linspace(lo, hi, n + 1)
    return [float(x) for x in e]


def fit_bins(targets, cfg: TokenizerConfig, size_lo: float = 0.0) -> dict:
    """Fit the data-dependent fields of ``cfg`` to ``targets`` (PoseTargets in the camera
    frame): percentile position edges per axis (object and waypoint positions), size edges
    (from ``size_lo``), and the object / hand rotation references (the mean rotation of the
    labels; objects after canonicalization). A target with ``found`` False contributes only its
    waypoints (demos without object annotations). Returns the fields as a JSON-able dict to
    merge into TokenizerConfig."""
    pos, sizes, R_obj, R_hand = [], [], [], []
    for t in targets:
        if t.found:
            pos.append(t.object_pose.position)
            if t.size is not None:
                sizes.extend(np.asarray(t.size, float))
            R_obj.append((t.category, t.object_pose.matrix()[:3, :3]))
        for w in t.waypoints:
            pos.append(w.pose.position)
            R_hand.append(w.pose.matrix()[:3, :3])
    if not pos:
        raise ValueError("no targets with an object to fit bins on")
    P = np.array(pos)
    out: dict = {"position_edges": [percentile_edges(P[:, a], cfg.position_bins) for a in range(3)]}
    if sizes:
        s = np.array(sizes + [size_lo])
        e = percentile_edges(s, cfg.size_bins)
        e[0] = size_lo if e[1] > size_lo else e[0]          # sizes start at size_lo, not below
        out["size_edges"] = e
    # object reference: iterate canonicalize -> mean (the canonical label depends on the reference)
    if R_obj:
        ref = np.eye(3)
        for _ in range(3):
            can = [symmetry.canonicalize(R, cfg.symmetries.get(c, "none"), ref) for c, R in R_obj]
            ref = Rotation.from_matrix(np.array(can)).mean().as_matrix()
        out["object_rotation_ref"] = [float(x) for x in Rotation.from_matrix(ref).as_quat()]
    if R_hand:
        out["hand_rotation_ref"] = [float(x) for x in Rotation.from_matrix(np.array(R_hand)).mean().as_quat()]
    return out
