"""matplotlib with the Agg backend: a plot as PNG bytes."""
import hashlib
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def line_plot_png():
    fig, ax = plt.subplots(figsize=(3, 2), dpi=80)
    ax.plot([0, 1, 2, 3], [1, 3, 2, 4], marker="o")
    ax.set_title("y against x")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    png = buf.getvalue()
    return {"magic": png[:8], "size": len(png), "sha256": hashlib.sha256(png).hexdigest()}
