"""Stands for modules/shared.py and modules/shared_state.py: the loaded model and the job state."""


class State:
    interrupted = False

    def interrupt(self):
        self.interrupted = True


state = State()
sd_model = None  # set by the test to one of tests/webui/standin_models.py's models
