"""Gain estimates and where they come from: the user, a documented prior, a gradient proxy, probes.

* `user`: gains given by candidate id or by method (per layer), applied by `app.planning.GainSpec`;
* `prior` (`prior.prior_gains`): a documented default when there is no data;
* `gradient` (`gradient.estimate_gains`, on `proxy.gradient_scores` and `calibrate`): a cheap proxy from a
  few batches of the user's data on the real model, calibrated to accuracy points by probes of whole
  roles (a kind of module under one method), of mixtures of every role and of full fine-tuning;
* `probe` (`probe.probe_fanout`): a short fine-tune per candidate against the head-only baseline;
* cheap sources (`cheap.cheap_gains` over one `cheap.Signal` each): `activation` (EVA-style explained
  variance of each site's inputs), `gradient-importance` (GoRA-style mean |W*G|), `gradient-l1`
  (AdamW's first-step loss decrease) and `weight-condition` (KappaTune-style, no data), scaled to
  accuracy points per method by the prior or by a few probes.

Every run records its cost against the fine-tuning run it plans for (`cost.gain_cost`, the profile's
`gain_cost`).

`registry.SOURCES` lists the sources that fill a profile, `registry.gains_fanout` lays one out as training
runs (`fanout.FanOut`: trained here, or one Ray task each) and `registry.fill_gains` runs one here;
`estimate.with_gains` writes estimates into a Profile: every candidate records `gain_source` and
`gain_details`.
"""
