import torch

from selfcascade.diffusion.sampling import make_scheduler, renoise, schedule


def test_renoise_is_the_forward_process(embedded_model):
    scheduler = make_scheduler(embedded_model, "ddim")
    timesteps = schedule(scheduler, 50, 0.7)
    clean = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    noisy = renoise(scheduler, clean, timesteps[:1], torch.Generator().manual_seed(2))
    eps = torch.randn(clean.shape, generator=torch.Generator().manual_seed(2))
    alpha_bar = scheduler.alphas_cumprod[int(timesteps[0])]
    expected = alpha_bar.sqrt() * clean + (1 - alpha_bar).sqrt() * eps
    assert torch.allclose(noisy, expected, atol=1e-5)


def test_strength_picks_the_paper_k(embedded_model):
    scheduler = make_scheduler(embedded_model, "ddim")
    timesteps = schedule(scheduler, 50, 0.7)
    assert len(timesteps) == 35
    assert 650 <= int(timesteps[0]) <= 720  # K = 700 of T = 1000
    full = schedule(make_scheduler(embedded_model, "ddim"), 50, 1.0)
    assert len(full) == 50 and int(full[0]) > 950


def test_every_listed_scheduler_runs_a_strength_schedule(embedded_model):
    from selfcascade.diffusion.sampling import SCHEDULERS

    for name in SCHEDULERS:
        scheduler = make_scheduler(embedded_model, name)
        timesteps = schedule(scheduler, 10, 0.5)
        clean = torch.zeros(1, 4, 8, 8)
        noisy = renoise(scheduler, clean, timesteps[:1], torch.Generator().manual_seed(0))
        assert noisy.shape == clean.shape and noisy.abs().sum() > 0
