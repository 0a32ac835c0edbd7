from . import lab_document
