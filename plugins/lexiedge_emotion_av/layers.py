"""Building blocks shared by the branches: norms, rotary positions, attention, feed-forwards.

Everything here is written for ONNX export with dynamic batch and sequence length: positions come
from ``torch.arange`` of the runtime length, masks are additive biases, and nothing branches on
tensor values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Added to the attention scores of keys that must not be attended to. Finite (and representable in
# fp16) so that a row whose every key is masked gives a uniform softmax instead of NaN.
MASKED_SCORE = -1.0e4


class RMSNorm(nn.Module):
    """Root-mean-square norm (no mean subtraction, no bias), computed in fp32 for fp16 safety.

    Written out rather than ``F.rms_norm`` so that the ONNX graph uses opset-18 primitives that
    every runtime (ORT Mobile, TensorRT) has.
    """

    def __init__(self, dim: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        normed = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (normed * self.weight.float()).to(x.dtype)


def rotary_tables(
    length: int | torch.SymInt, head_dim: int, like: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables (length, head_dim) for rotary position embedding, from the runtime length."""
    inv_freq = 1.0 / (
        10000.0 ** (torch.arange(0, head_dim, 2, device=like.device, dtype=torch.float32) / head_dim)
    )
    positions = torch.arange(length, device=like.device, dtype=torch.float32)
    angles = positions[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos().to(like.dtype), angles.sin().to(like.dtype)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (half-split layout) of x (B, heads, T, head_dim) by position angles."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


def key_bias(key_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """(B, N) 1/0 key mask -> (B, 1, 1, N) additive score bias (0 or MASKED_SCORE)."""
    return ((1.0 - key_mask) * MASKED_SCORE).to(dtype)[:, None, None, :]


class SelfAttention(nn.Module):
    """Non-causal grouped-query self-attention (heads == kv_heads is plain multi-head attention).

    ``rotary`` adds relative position information computed from the runtime length; ``qk_norm``
    RMS-normalises queries and keys per head (LFM2 does this; it keeps logits bounded in fp16).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        kv_heads: int | None = None,
        *,
        rotary: bool = True,
        qk_norm: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        kv_heads = kv_heads or heads
        self.heads = heads
        self.kv_heads = kv_heads
        self.head_dim = dim // heads
        self.rotary = rotary
        self.q_proj = nn.Linear(dim, heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(dim, kv_heads * self.head_dim, bias=False)
        self.o_proj = nn.Linear(heads * self.head_dim, dim, bias=False)
        self.q_norm: nn.Module = RMSNorm(self.head_dim) if qk_norm else nn.Identity()
        self.k_norm: nn.Module = RMSNorm(self.head_dim) if qk_norm else nn.Identity()
        self.dropout = nn.Dropout(dropout)

    def _split(self, x: torch.Tensor, heads: int) -> torch.Tensor:
        # (B, T, heads*head_dim) -> (B, heads, T, head_dim); -1 keeps B and T symbolic for export
        return x.unflatten(-1, (heads, self.head_dim)).transpose(1, 2)

    def forward(self, x: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, dim); bias (B, 1, 1, T) additive key bias or None."""
        q = self.q_norm(self._split(self.q_proj(x), self.heads))
        k = self.k_norm(self._split(self.k_proj(x), self.kv_heads))
        v = self._split(self.v_proj(x), self.kv_heads)
        if self.rotary:
            cos, sin = rotary_tables(x.shape[1], self.head_dim, q)
            q = apply_rotary(q, cos, sin)
            k = apply_rotary(k, cos, sin)
        # K transposed before its heads are repeated: the same numbers, but LiteRT's converter computed
        # q @ repeat(k).transpose wrong for kv_heads == 1 (max |logit diff| 3e-3), and right this way
        k_t = k.transpose(-1, -2)
        if self.kv_heads != self.heads:
            # share each key/value head among heads // kv_heads query heads
            repeat = self.heads // self.kv_heads
            k_t = k_t[:, :, None].expand(-1, -1, repeat, -1, -1).flatten(1, 2)
            v = v[:, :, None].expand(-1, -1, repeat, -1, -1).flatten(1, 2)
        # Plain matmul + softmax: exports to opset-18 MatMul/Softmax that ORT Mobile and TensorRT run.
        scores = torch.matmul(q, k_t) * (self.head_dim**-0.5)
        if bias is not None:
            scores = scores + bias
        weights = self.dropout(torch.softmax(scores.float(), dim=-1).to(v.dtype))
        out = torch.matmul(weights, v).transpose(1, 2).flatten(2)
        return self.o_proj(out)


class FeedForward(nn.Module):
    """Linear -> activation -> dropout -> Linear -> dropout (the Conformer/Transformer FFN)."""

    def __init__(
        self, dim: int, hidden: int, dropout: float = 0.0, activation: type[nn.Module] = nn.SiLU
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden),
            activation(),
            nn.Dropout(dropout),
            nn.Linear(hidden, dim),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class SwiGLU(nn.Module):
    """Gated feed-forward (LLaMA/LFM2): down(silu(gate(x)) * up(x))."""

    def __init__(self, dim: int, hidden: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.gate = nn.Linear(dim, hidden, bias=False)
        self.up = nn.Linear(dim, hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.down(F.silu(self.gate(x)) * self.up(x)))


def swiglu_hidden(dim: int) -> int:
    """8/3 * dim rounded up to a multiple of 8: the parameter count of a 4x GELU MLP."""
    return ((8 * dim // 3) + 7) // 8 * 8


class TransformerBlock(nn.Module):
    """Pre-norm self-attention + FFN block (used over the frame sequence of the visual branch)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        self.attn_norm = nn.LayerNorm(dim)
        self.attn = SelfAttention(dim, heads, rotary=True, dropout=dropout)
        self.ffn_norm = nn.LayerNorm(dim)
        self.ffn = FeedForward(dim, mlp_ratio * dim, dropout, activation=nn.GELU)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attn(self.attn_norm(x)))
        return x + self.ffn(self.ffn_norm(x))
