#!/usr/bin/env python3
"""plot.py SUMMARY.tsv OUT.svg: the opening plot of docs/performance.md.

SUMMARY.tsv has one line per bar: panel<TAB>group<TAB>target<TAB>value, where
panel is the panel's title (e.g. "call setup, cycles/s (higher is better)"),
group the x-axis group (e.g. "1 client"), target the proxy (rtpkit, rtpengine,
thin relay). Written by hand from one run of the bench scripts; the SVG is
drawn here without plotting libraries (none is installed on the VM).
"""
import sys
from collections import OrderedDict

COLORS = {"rtpkit": "#2b6cb0", "rtpengine": "#c05621", "thin relay": "#718096"}


def main(src, dst):
    panels = OrderedDict()
    for line in open(src, encoding="utf-8"):
        line = line.rstrip("\n")
        if not line or line.startswith("#"):
            continue
        panel, group, target, value = line.split("\t")
        panels.setdefault(panel, OrderedDict()).setdefault(group, OrderedDict())[target] = float(value)
    pw, ph, top, left, gap = 420, 260, 40, 50, 30
    width = len(panels) * (pw + gap) + gap
    height = ph + top + 70
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for pi, (title, groups) in enumerate(panels.items()):
        x0 = gap + pi * (pw + gap)
        vmax = max(v for g in groups.values() for v in g.values()) * 1.15
        out.append(f'<text x="{x0 + pw / 2}" y="20" text-anchor="middle" font-weight="bold">{title}</text>')
        base = top + ph
        out.append(f'<line x1="{x0 + left}" y1="{base}" x2="{x0 + pw}" y2="{base}" stroke="black"/>')
        gw = (pw - left) / len(groups)
        for gi, (group, bars) in enumerate(groups.items()):
            bw = gw * 0.8 / len(bars)
            gx = x0 + left + gi * gw + gw * 0.1
            for bi, (target, v) in enumerate(bars.items()):
                h = ph * v / vmax
                bx = gx + bi * bw
                color = COLORS.get(target, "#4a5568")
                out.append(f'<rect x="{bx:.1f}" y="{base - h:.1f}" width="{bw * 0.9:.1f}" height="{h:.1f}" fill="{color}"/>')
                label = f"{v:,.0f}" if v >= 100 else f"{v:.1f}"
                out.append(f'<text x="{bx + bw * 0.45:.1f}" y="{base - h - 4:.1f}" text-anchor="middle" font-size="10">{label}</text>')
            out.append(f'<text x="{gx + gw * 0.4:.1f}" y="{base + 16}" text-anchor="middle">{group}</text>')
    lx = gap
    for target, color in COLORS.items():
        out.append(f'<rect x="{lx}" y="{height - 24}" width="12" height="12" fill="{color}"/>')
        out.append(f'<text x="{lx + 16}" y="{height - 14}">{target}</text>')
        lx += 110
    out.append("</svg>")
    with open(dst, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
