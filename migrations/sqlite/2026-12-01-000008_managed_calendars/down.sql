DROP TABLE calendar_calendars;
