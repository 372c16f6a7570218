"""The station's domain: the step workflow (pure, ``station.workflow``), barcode
identification (``station.identify``), the messages a line worker reads
(``station.messages``) and the database adapter every path calls
(``station.service``). The tablet blueprint lives beside them.
"""
