"""The classification task family: labelled examples, each with its contributor."""

from datalever.tasks.classify.examples import ExampleSet, LabelledExamples, load_digits_dataset

__all__ = ["ExampleSet", "LabelledExamples", "load_digits_dataset"]
