from termwise.health import Window


def window(
    means: dict[str, float],
    terms=("recon", "kl"),
    roles=("data", "kl"),
    index=0,
    step=99,
    nonfinite=0,
) -> Window:
    return Window(index, step, 50, means, tuple(terms), tuple(roles), nonfinite)


def share_means(**terms: tuple[float, float, float]) -> dict[str, float]:
    """term=(raw, weight, share) -> window means."""
    means = {}
    for name, (raw, weight, share) in terms.items():
        means.update(
            {
                f"{name}.raw": raw,
                f"{name}.weight": weight,
                f"{name}.weighted": raw * weight,
                f"{name}.share": share,
                f"{name}.active": 1.0,
            }
        )
    return means
