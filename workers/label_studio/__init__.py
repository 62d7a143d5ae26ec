"""Label Studio as the annotators' tool and alrank as its ranker.

Label Studio (1.23) talks to an ML backend by URL: ``/health``, ``/setup``, ``/versions``,
``/predict`` and ``/webhook``; it never asks a backend for the next task. So alrank answers
those calls (``service.label_studio``) and works Label Studio's REST API from a worker
(``workers.label_studio.sync``):

- the pool flows in: the project's tasks become items (at setup, and on ``TASKS_CREATED``);
- labels flow in: annotations arrive as webhooks, and ``START_TRAINING`` reads them all;
- the order flows out: after each published ranking, predictions of a new model version
  whose ``score`` is the task's rank go to the head of the ranking, and the project's
  ``model_version`` is switched to it, so Label Studio's ``Uncertainty sampling`` serves
  tasks in alrank's order (lowest score first).

``workers.label_studio.config`` reads a label config and turns annotations into labels;
``workers.label_studio.client`` is the REST client.
"""
