"""The recommended preset: its departures, a smoke-scale run, and its weight average in the run files."""
import numpy as np
import pytest
import tensorflow as tf

from medgan_lib.config import MEDGAN, MEDGAN_CHANGES, MEDGAN_SMOKE, PAPER
from medgan_lib.data import load_images
from medgan_lib.rundir import read_history

DERIVED = {"preset", "notes", "image_size"}
DIVERSITY_FLOOR = 0.1  # per-pixel std across the fixed samples / the training images' (1 = as diverse, 0 = one image); 0.17 measured


def test_medgan_differs_from_paper_in_exactly_the_fields_it_explains():
    paper, medgan = PAPER.to_dict(), MEDGAN.to_dict()
    differing = {field for field in paper if paper[field] != medgan[field]} - DERIVED
    assert differing == set(MEDGAN_CHANGES)
    assert all(len(reason) > 20 for _, reason in MEDGAN_CHANGES.values())
    assert MEDGAN.d_mode == "scratch" and MEDGAN.discriminator == "conv"  # never needs an ImageNet file


@pytest.fixture(scope="module")
def medgan_smoke_run(tmp_path_factory):
    from medgan_lib.runs import train

    config = MEDGAN_SMOKE  # the preset at smoke scale (32 px, 12 steps)
    return config, train(config, tmp_path_factory.mktemp("medgan_smoke"), progress=False)


def test_medgan_at_smoke_scale_leaves_chance_and_keeps_diverse_samples(medgan_smoke_run):
    config, run_dir = medgan_smoke_run
    history = read_history(run_dir / "history.csv")
    assert max(abs(row["d_loss"] - np.log(2)) for row in history) > 0.05
    first, last = (np.load(run_dir / "samples" / f"epoch_{e:04d}.npy") for e in (1, config.epochs))
    assert np.abs(last - first).mean() > 0.01  # the samples change
    real = load_images(config.data, config.image_size, config.channels, config.n_images, config.seed).images
    diversity = last.std(axis=0).mean() / real.std(axis=0).mean()
    assert diversity > DIVERSITY_FLOOR


def test_snapshots_and_samples_come_from_the_weight_average(medgan_smoke_run):
    from medgan_lib.checkpoints import Checkpoints
    from medgan_lib.gan import precision_policy
    from medgan_lib.generator import build_generator
    from medgan_lib.rundir import snapshot_generator
    from medgan_lib.runs import build_gan

    config, run_dir = medgan_smoke_run
    assert config.mixed_precision
    gan, _ = build_gan(config)
    Checkpoints(run_dir, gan).restore()
    snapshot = snapshot_generator(run_dir, config.epochs, config)
    assert {layer.compute_dtype for layer in snapshot.layers} == {"float32"}  # sampling is float32 for a bf16 run
    for saved, average, raw in zip(snapshot.weights, gan.generator_average.weights, gan.generator.weights):
        np.testing.assert_array_equal(saved.numpy(), average.numpy(), err_msg=saved.name)
    assert any(not np.array_equal(a.numpy(), r.numpy()) for a, r in zip(snapshot.weights, gan.generator.weights))
    with precision_policy(config.mixed_precision):  # the policy the run's samples were drawn under
        sampler = build_generator(config)
    sampler.set_weights(snapshot.get_weights())
    fixed = np.load(run_dir / "fixed_noise.npy")
    np.testing.assert_allclose(sampler(fixed, training=False).numpy(),
                               np.load(run_dir / "samples" / f"epoch_{config.epochs:04d}.npy"), atol=1e-6)


def test_learning_rates_fall_linearly_to_zero_over_the_last_share_of_epochs():
    from medgan_lib.gan import learning_rate_factor

    assert MEDGAN.epochs == 210 and round(MEDGAN.lr_decay_fraction * MEDGAN.epochs) == 60
    factors = [learning_rate_factor(MEDGAN, epoch) for epoch in range(1, MEDGAN.epochs + 1)]
    assert factors[:150] == [1.0] * 150
    assert factors[150:] == pytest.approx([(60 - i - 0.5) / 60 for i in range(60)])
    assert {learning_rate_factor(MEDGAN.replace(lr_decay_fraction=0.0), e) for e in (1, 210)} == {1.0}


def test_the_training_loop_sets_the_decayed_rates_and_checkpoints_them(medgan_smoke_run):
    from medgan_lib.checkpoints import Checkpoints
    from medgan_lib.gan import learning_rate_factor
    from medgan_lib.runs import build_gan

    config, run_dir = medgan_smoke_run
    last = learning_rate_factor(config, config.epochs)
    assert last == 0.5  # the medgan preset's 2/7 of 3 epochs: the last one decays
    gan, _ = build_gan(config)
    Checkpoints(run_dir, gan).restore()
    assert float(gan.g_optimizer.learning_rate) == pytest.approx(config.g_learning_rate * last)
    assert float(gan.d_optimizer.learning_rate) == pytest.approx(config.d_learning_rate * last)


def test_lazy_r1_is_applied_every_k_th_discriminator_update_times_k():
    from medgan_lib.losses import r1_gradient_penalty
    from medgan_lib.runs import build_gan

    config = MEDGAN_SMOKE.replace(r1_every=3, diff_augment=False)
    gan, _ = build_gan(config)
    real = tf.random.stateless_normal((4, config.image_size, config.image_size, 1), (3, 1))
    expected = 3 * float(r1_gradient_penalty(lambda x: gan.discriminator(x, training=True), real, config.r1_gamma))
    assert expected > 0
    values = []
    for iteration in range(4):
        gan.d_optimizer.iterations.assign(iteration)
        values.append(float(gan.r1_penalty(real)))
    assert values == pytest.approx([expected, 0.0, 0.0, expected], rel=1e-5)
    assert float(build_gan(config.replace(r1_gamma=0.0))[0].r1_penalty(real)) == 0.0


def test_the_weight_average_never_feeds_back_into_training(medgan_smoke_run, tmp_path):
    from medgan_lib.runs import train

    config, run_dir = medgan_smoke_run
    without = train(config.replace(g_ema_decay=0.0), tmp_path / "without_average", progress=False)
    with_losses, without_losses = (
        [(row["d_loss"], row["g_loss"]) for row in read_history(d / "history.csv")] for d in (run_dir, without))
    assert with_losses == without_losses


def test_trained_generator_is_g_itself_in_float32_not_its_average(medgan_smoke_run):
    from medgan_lib.checkpoints import Checkpoints, trained_generator
    from medgan_lib.rundir import snapshot_generator
    from medgan_lib.runs import build_gan

    config, run_dir = medgan_smoke_run
    gan, _ = build_gan(config)
    Checkpoints(run_dir, gan).restore()
    model = trained_generator(run_dir)
    assert {layer.compute_dtype for layer in model.layers} == {"float32"}
    for mine, raw in zip(model.weights, gan.generator.weights, strict=True):
        np.testing.assert_array_equal(mine.numpy(), raw.numpy(), err_msg=mine.name)
    average = snapshot_generator(run_dir, config.epochs, config)
    assert any(not np.array_equal(a.numpy(), m.numpy()) for a, m in zip(average.weights, model.weights))


def test_the_ablation_row_without_the_average_samples_g_from_the_unchanged_run(medgan_smoke_run, tmp_path):
    import shutil

    from medgan_lib.ablation import NO_WEIGHT_AVERAGE, UNCHANGED, _metrics_row, ablate, heldout_sample
    from medgan_lib.checkpoints import trained_generator
    from medgan_lib.real_sets import training_images
    from medgan_lib.rundir import read_provenance
    from medgan_lib.sampling import generate_images, latent_batch

    config, run_dir = medgan_smoke_run
    copy = shutil.copytree(run_dir, tmp_path / UNCHANGED / f"seed_{config.seed}")  # finished: nothing to train
    sessions = len(read_provenance(copy)["sessions"])
    rows = ablate(tmp_path, [UNCHANGED, NO_WEIGHT_AVERAGE], [config.seed], base=config.preset, n=64)
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == [UNCHANGED]  # no second run
    assert len(read_provenance(copy)["sessions"]) == sessions + 1  # the shared run is resumed once, not per row
    unchanged, without = rows[0], rows[1]
    assert without["variant"] == NO_WEIGHT_AVERAGE and without["swd"] != unchanged["swd"]
    heldout = heldout_sample(config, None, 64)
    images = generate_images(trained_generator(run_dir, config), latent_batch(config.seed, len(heldout), config.latent_dim))
    expected = _metrics_row(images, heldout, training_images(config).images, config.seed)
    assert without["swd"] == pytest.approx(expected["swd"]) and without["recall"] == expected["recall"]
