"""Ids as the views show them."""

from __future__ import annotations


def short_id(value: str, keep: int = 6) -> str:
    """The distinctive part of an id: ``run_3f0c1a…`` → ``3f0c1a``,
    ``th_demo_ana_0a1b2c3d`` → ``0a1b2c`` (tooltips show the whole id).

    Ids are ``prefix_…_random``; the random tail tells them apart. For run ids this is the
    same short form the sessions list and the timeline's lane labels use, so a row and its
    lane read alike.
    """
    tail = value.rsplit("_", 1)[-1]
    return (tail or value)[:keep]
