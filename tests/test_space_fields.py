"""On a Space the model, VAE and adapter fields read no server path: an existing and a missing path get the same
one-line answer in every handler, the shipped model's own path is refused, names and hub ids still work. Each case
runs in a fresh process with SPACE_ID set, as a Space starts (ON_SPACE is read at import)."""

import json

from .test_space import ROOT, run_python

SCRIPT = """
import json, os
os.chdir({root!r})  # where a Space runs the app: its relative folders are the checkout's
from selfcascade.models.loader import EMBEDDED_MODEL
from selfcascade.models.names import SHIPPED_ADAPTERS
from selfcascade.ui import train_handlers
from selfcascade.ui.handlers import compare, generate_stream
from selfcascade.ui.video_handlers import video_stream

FORM = dict(prompt="a red circle", negative="", width=64, height=64, stages="", mode="tuning-free", steps=2,
            strength=0.5, guidance=4.0, scheduler=None, upper=None, anchor=None, upper_guidance=None, seed=1)

def generate(model="embedded", vae=None, adapter=None, mode="tuning-free", width=64):
    form = dict(FORM, model=model, mode=mode, width=width, height=width)
    return list(generate_stream(**form, upload=None, adapter=adapter, vae=vae))[-1][0]

def compared(model="embedded", vae=None):
    return list(compare(**dict(FORM, model=model), vae=vae))[-1][0]

def video(model):
    return list(video_stream(model, "a red circle", "", 64, 64, 2, 8, "", "tuning-free", 2, 0.5, 4.0, None, None,
                             None, None, 0))[-1][0]

def train(model="embedded", resume="(new)"):
    return list(train_handlers.train_stream(model, None, "", True, 128, 128, 1, 2e-3, 1, "", 0, "", 0, resume))[-1][0]

def upload(model):
    return train_handlers.add_uploaded_adapter(str(SHIPPED_ADAPTERS["shapes-adapter"] / "adapter.safetensors"),
                                               model)[1]

existing, missing = "/root", "/nonexistent/dir"
os.chdir("selfcascade")  # here "assets/shapes-model" is the shipped model's real folder, and hub-shaped
relative = [generate("assets/shapes-model"), generate("assets/no-such-model")]
os.chdir("..")
out = {{
    "model": [generate(existing), generate(missing), generate(str(EMBEDDED_MODEL)),
              generate("./selfcascade/assets/shapes-model"),
              generate("../" + os.path.basename(os.getcwd()) + "/selfcascade/assets/shapes-model")],
    "vae": [generate(vae=str(EMBEDDED_MODEL / "vae")), generate(vae="/nonexistent/vae"), compared(vae="/etc")],
    "adapter": [generate(adapter="/etc/shadow", mode="tuned"), generate(adapter="/nonexistent.safetensors",
                mode="tuned"), generate(adapter=str(SHIPPED_ADAPTERS["shapes-adapter"]), mode="tuned"),
                train(resume="/etc/shadow"), train(resume="/nonexistent")],
    "other handlers": [compared(existing), compared(missing), video(existing), video(missing), train(existing),
                       train(missing), upload(existing), upload(missing)],
    "relative hub-shaped": relative,
    "names work": [generate("embedded"), generate(adapter="shapes-adapter", mode="tuned", width=128)],
}}
print(json.dumps(out))
"""


def test_server_paths_get_one_answer_whether_they_exist_or_not(tmp_path):
    out = json.loads(run_python(SCRIPT.format(root=str(ROOT)), SPACE_ID="someone/selfcascade", HF_HUB_OFFLINE="1",
                                SELFCASCADE_OUTPUT_DIR=str(tmp_path / "outputs")))
    model = ("on this Space the model field takes a hub id (owner/name) or a listed model such as 'embedded'; server "
             "paths are not read")
    adapter = ("on this Space the adapter field takes a listed adapter, or one you uploaded or trained in this "
               "session; server paths are not read")
    assert set(out["model"]) == {f"**Not run:** {model}"}  # /root, a missing folder, the shipped model's own path
    assert set(out["vae"]) == {"**Not run:** on this Space the VAE field takes a hub id (owner/name) or nothing "
                               "(the model's own); server paths are not read"}
    assert set(out["adapter"][:3]) == {f"**Not run:** {adapter}"} and set(out["adapter"][3:]) == {
        f"**Not trained:** {adapter}"}
    compare_, video_, train_, upload_ = (out["other handlers"][i:i + 2] for i in range(0, 8, 2))
    assert compare_ == [f"**Not run:** {model}"] * 2 and video_ == [f"**Not run:** {model}"] * 2
    assert train_ == [f"**Not trained:** {model}"] * 2 and upload_ == [f"**Adapter refused:** {model}"] * 2
    # owner/name is a hub id on a Space, never a relative folder of that name: both ask the (offline) hub
    existing, missing = out["relative hub-shaped"]
    assert existing.replace("assets/shapes-model", "X") == missing.replace("assets/no-such-model", "X")
    assert "not available offline" in existing
    assert all(status.startswith("**Done**") for status in out["names work"])
    assert str(ROOT) not in json.dumps(out)
